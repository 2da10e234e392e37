// finnhubd's systemd addon: sends sd_notify(3) datagrams to
// $NOTIFY_SOCKET, which Node cannot do itself (it has no unix datagram sockets).
// Two functions, both synchronous and cheap (one socket, one sendmsg, one close):
//   notify(socketPath, message) -> undefined, throws an Error with .code (errno name)
//   monotonicUsec()             -> bigint, CLOCK_MONOTONIC in µs (for RELOADING=1's MONOTONIC_USEC=)
// and a third that Node cannot do itself either:
//   hardExit(code)              -> never returns: _exit(2) with code (0..255)
// process.exit() runs Node's teardown first, which joins libuv's thread pool and the
// worker threads; a native close stuck in one of them (node-rdkafka's
// rd_kafka_consumer_close) then holds the process forever. _exit skips all of it:
// no 'exit' listeners, no atexit handlers, no joins; the kernel closes the fds. The
// caller writes its last log line first (stdout to a file, pipe or socket is
// synchronous on Linux in Node, so the line is in the kernel by then).
// A socket path starting with '@' is an abstract socket (the '@' becomes a NUL byte),
// as in libsystemd. The caller decides when $NOTIFY_SOCKET is unset (no call at all).
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#define MAX_MESSAGE 4096

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *name = "EIO";
  switch (err) {
    case ENOENT: name = "ENOENT"; break;
    case ECONNREFUSED: name = "ECONNREFUSED"; break;
    case EACCES: name = "EACCES"; break;
    case EPERM: name = "EPERM"; break;
    case EAGAIN: name = "EAGAIN"; break;
    case ENAMETOOLONG: name = "ENAMETOOLONG"; break;
    case EINVAL: name = "EINVAL"; break;
    case EMSGSIZE: name = "EMSGSIZE"; break;
    case ENOTDIR: name = "ENOTDIR"; break;
    case EPROTOTYPE: name = "EPROTOTYPE"; break;
    default: break;
  }
  napi_throw_error(env, name, msg);
  return NULL;
}

static int get_string(napi_env env, napi_value value, char *buf, size_t size, size_t *len) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_string) return -1;
  if (napi_get_value_string_utf8(env, value, NULL, 0, len) != napi_ok) return -1;
  if (*len >= size) return -2;
  return napi_get_value_string_utf8(env, value, buf, size, len) == napi_ok ? 0 : -1;
}

static napi_value notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "EINVAL", "notify(socketPath, message) takes two strings");
    return NULL;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  char path[sizeof addr.sun_path + 1];
  size_t path_len = 0;
  int rc = get_string(env, argv[0], path, sizeof path, &path_len);
  if (rc == -2 || (rc == 0 && path_len > sizeof addr.sun_path)) return throw_errno(env, ENAMETOOLONG, "NOTIFY_SOCKET");
  if (rc == -1 || path_len < 2 || (path[0] != '/' && path[0] != '@')) {
    napi_throw_type_error(env, "EINVAL", "the socket path must be an absolute path or an abstract name starting with '@'");
    return NULL;
  }
  memcpy(addr.sun_path, path, path_len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  // A path socket's address includes its terminating NUL when there is room; an abstract one never does.
  socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len +
                                   (path[0] == '/' && path_len < sizeof addr.sun_path ? 1 : 0));

  char message[MAX_MESSAGE];
  size_t message_len = 0;
  rc = get_string(env, argv[1], message, sizeof message, &message_len);
  if (rc == -1) {
    napi_throw_type_error(env, "EINVAL", "the message must be a string such as \"READY=1\"");
    return NULL;
  }
  if (rc == -2) return throw_errno(env, EMSGSIZE, "sd_notify message");

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket(AF_UNIX, SOCK_DGRAM)");
  ssize_t sent;
  do {
    sent = sendto(fd, message, message_len, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
  } while (sent < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (sent < 0) return throw_errno(env, err, "sendto($NOTIFY_SOCKET)");
  return NULL;
}

static napi_value monotonic_usec(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return throw_errno(env, errno, "clock_gettime(CLOCK_MONOTONIC)");
  uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
  napi_value result;
  if (napi_create_bigint_uint64(env, usec, &result) != napi_ok) return NULL;
  return result;
}

static napi_value hard_exit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype type = napi_undefined;
  if (argc >= 1 && napi_typeof(env, argv[0], &type) != napi_ok) return NULL;
  double code = -1;
  if (type != napi_number || napi_get_value_double(env, argv[0], &code) != napi_ok ||
      !(code >= 0 && code <= 255) || code != (double)(int)code) {
    // A bad code must not turn into a silent exit 0: refuse, the caller falls back.
    napi_throw_type_error(env, "EINVAL", "hardExit(code) takes an exit code from 0 to 255");
    return NULL;
  }
  _exit((int)code);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"notify", NULL, notify, NULL, NULL, NULL, napi_enumerable, NULL},
    {"monotonicUsec", NULL, monotonic_usec, NULL, NULL, NULL, napi_enumerable, NULL},
    {"hardExit", NULL, hard_exit, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
