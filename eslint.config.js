import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', '.stack/**', '.tap/**', 'coverage/**', 'native/build/**']
  }),
  {
    // The console's page script runs in the browser, beside the bundled chart library.
    files: ['daemon/console/static/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        document: 'readonly',
        window: 'readonly',
        location: 'readonly',
        fetch: 'readonly',
        EventSource: 'readonly',
        URLSearchParams: 'readonly',
        LightweightCharts: 'readonly'
      }
    }
  }
]
