import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  ignores: ['dist/**', '.stack/**', '.tap/**', 'coverage/**', 'native/build/**']
})
