// Runs a Renovate extract.spec.ts with stubs that record (input, expectation) pairs.
const fs = require('fs');
const [,, specPath, fixtureDir, outPath] = process.argv;
let src = fs.readFileSync(specPath, 'utf8');
src = src.replace(/^import[\s\S]*?;\s*$/gm, '');
src = src.replace(/^vi\.mock\([^;]*;\s*$/gm, '');
src = src.replace(/: (PackageDependency\[\]|PackageDependency|string|any|Record<string, string>)(?=[\s=,)])/g, '');
src = src.replace(/ as [A-Z]\w*(\[\])?/g, '');
src = src.replace(/\}: \{[^{}]*\}\) =>/g, '}) =>');
src = src.replace(/\((\w+): \w+(\[\])?\) =>/g, '($1) =>');
src = src.replace(/!\./g, '.').replace(/!\)/g, ')').replace(/!;/g, ';');
function codeBlock(strings, ...vals) {
  let s = strings.raw ? String.raw({ raw: strings.raw.map(x => x) }, ...vals) : strings;
  // common-tags codeBlock: strip indentation, trim; String.raw keeps escapes: undo \\ and \`
  s = strings.reduce((a, str, i) => a + str + (i < vals.length ? vals[i] : ''), '');
  const lines = s.split('\n');
  const indents = lines.filter(l => l.trim()).map(l => l.match(/^[ \t]*/)[0].length);
  const min = indents.length ? Math.min(...indents) : 0;
  return lines.map(l => l.slice(min)).join('\n').trim();
}
const Fixtures = { get: (n) => fs.readFileSync(fixtureDir + '/' + n, 'utf8') };
const records = [];
let current = null;
const TOKEN = Symbol('token');
function extractPackageFile(content, fileName, config) {
  const rec = { test: current, input: content, fileName, expected: undefined };
  records.push(rec);
  const deps = { [TOKEN]: rec };
  return { [TOKEN]: rec, deps };
}
function expect(x) {
  const rec = x && x[TOKEN];
  const set = (kind) => (y) => { if (rec && rec.expected === undefined) { rec.expected = y; rec.kind = kind; } };
  const api = { toEqual: set('equal'), toStrictEqual: set('equal'), toMatchObject: set('match'),
    toBeNull: () => set('null')(null), toBeUndefined: () => set('null')(null), toHaveLength: (n) => set('length')(n),
    toMatchSnapshot: (y) => set('snapshot')(y === undefined ? 'SNAPSHOT' : y), toBe: set('equal'), toBeTrue() {}, toBeFalse() {} };
  api.not = { toBeNull() {}, toBeUndefined() {} };
  return api;
}
const noop = () => {};
const describe = (n, f) => f();
const it = (n, f) => { current = n; try { const p = f(); if (p && p.catch) p.catch(e => records.push({ test: n, error: String(e) })); } catch (e) { records.push({ test: n, error: String(e) }); } };
it.each = () => () => {};
const beforeEach = noop, afterEach = noop, beforeAll = noop, afterAll = noop;
const getDep = () => ({}), extractVariables = () => ({});
const GlobalConfig = { set: noop, reset: noop }, memCache = { init: noop, reset: noop }, vi = { mock: noop };
const chain = new Proxy(function () {}, { get: (t, k) => (k === 'then' ? undefined : chain), apply: () => chain });
const fsStub = chain;
eval(src.replace(/\bfs\./g, 'fsStub.'));
process.on('exit', () => { fs.writeFileSync(outPath, JSON.stringify(records, null, 1));
console.log(records.length, 'records', records.filter(r => r.error).length, 'errors', records.filter(r => !r.error && r.expected === undefined).length, 'without expectation'); });
