// Resolve a `github>…` preset string the way Renovate 39 does (node renovate_preset.cjs DIST).
//
// Parses it with config/presets/parse.js and fetches it with config/presets/github's own code
// (the contents API, `?ref=` from the `#` part), only against ENDPOINT instead of
// api.github.com. Input on stdin (JSON): {preset, endpoint}. Output: one marked JSON line,
// {parsed, preset} or {parsed, error}.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = process.argv[2];
const req = (p) => require(path.join(dist, p));
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const { parsePreset } = req('config/presets/parse');
const github = req('config/presets/github');

(async () => {
  const parsed = parsePreset(input.preset);
  let result;
  try {
    const preset = await github.getPresetFromEndpoint(
      parsed.repo, parsed.presetName, parsed.presetPath, input.endpoint, parsed.tag);
    result = { parsed, preset };
  } catch (e) {
    result = { parsed, error: String(e.message || e) };
  }
  process.stdout.write(`\nRENOVATE-PRESET-RESULT ${JSON.stringify(result)}\n`);
})();
