{
  "targets": [
    {
      "target_name": "sd_notify",
      "sources": ["src/sd_notify.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
