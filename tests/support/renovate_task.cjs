// Run postUpgradeTasks commands the way Renovate's own code does (node renovate_task.cjs DIST).
//
// Mirrors workers/repository/update/branch/execute-post-upgrade-commands.js of Renovate 39:
// the allowedCommands patterns are tested against the command as written (before templating),
// the command is compiled with Renovate's template engine against the upgrade's fields, and
// run by Renovate's exec, whose child gets Renovate's trimmed copy of the bot's environment plus
// the admin's customEnvVariables. Input on stdin (JSON): allowedCommands, allowCommandTemplating,
// and tasks: [{command, upgrade, cwd, env, customEnvVariables}], where env is the environment of
// the Renovate process for that task. A task with packageRules instead of command takes its
// command from what Renovate's own applyPackageRules gives that upgrade (none: {commands: []}).
// Output: one marked JSON line on stdout (Renovate's logger writes there too), a result per task.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = process.argv[2];
const req = (p) => require(path.join(dist, p));
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const { GlobalConfig } = req('config/global');
const { regEx } = req('util/regex');
const { compile } = req('util/template');
const { setCustomEnv } = req('util/env');
const { exec } = req('util/exec');
const { applyPackageRules } = req('util/package-rules');

async function runTask(task) {
  GlobalConfig.set({
    allowedCommands: input.allowedCommands,
    allowCommandTemplating: input.allowCommandTemplating,
    localDir: task.cwd,
  });
  setCustomEnv(task.customEnvVariables || {});
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, task.env);
  let cmd = task.command;
  if (task.packageRules) {
    const applied = await applyPackageRules({ ...task.upgrade, packageRules: task.packageRules });
    const commands = applied.postUpgradeTasks?.commands ?? [];
    if (commands.length !== 1) return { commands };
    cmd = commands[0];
  }
  if (!input.allowedCommands.some((pattern) => regEx(pattern).test(cmd))) {
    return { allowed: false };
  }
  const compiled = input.allowCommandTemplating ? compile(cmd, task.upgrade) : cmd;
  try {
    const r = await exec(compiled, { cwd: task.cwd });
    return { allowed: true, command: cmd, compiled, code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    return { allowed: true, command: cmd, compiled, code: e.exitCode ?? 1, stdout: e.stdout, stderr: e.stderr };
  }
}

(async () => {
  const results = [];
  for (const task of input.tasks) results.push(await runTask(task));
  process.stdout.write(`\nRENOVATE-TASK-RESULT ${JSON.stringify(results)}\n`);
})();
