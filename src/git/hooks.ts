import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { GitEnv } from './runner.ts';

/**
 * Palisade's pre-receive hook. receive-pack runs it after the pack has arrived (its objects
 * still in quarantine, readable by the hook) and before any ref moves; if it fails, every ref
 * of the push is refused and the quarantine dropped, so nothing is written. It is used only
 * for pushes the decision point allowed on the condition that some refs move forward: those
 * refs, one `<ref>\t<reason>` a line, in PALISADE_FF_ONLY. A listed ref moved to a commit that
 * does not descend from its old one is reported on stderr (git prints it as `remote: …`) and,
 * for the server's audit log, appended to the file named by PALISADE_HOOK_REPORT. Ref names
 * are compared as whole lines and never reach a command line; the object ids come from
 * receive-pack.
 */
const PRE_RECEIVE = `#!/bin/sh
# Written by Palisade at start; edits are overwritten.
nl='
'
tab='	'
list="$nl$PALISADE_FF_ONLY"
refused=
while read -r old new ref; do
  case "$list$nl" in
    *"$nl$ref$tab"*) ;;
    *) continue ;;
  esac
  case "$old" in *[!0]*) ;; *) continue ;; esac
  case "$new" in *[!0]*) ;; *) continue ;; esac
  if ! git merge-base --is-ancestor "$old" "$new" 2>/dev/null; then
    rest=\${list#*"$nl$ref$tab"}
    why=\${rest%%"$nl"*}
    echo "palisade: $ref: force push refused: $why" >&2
    if [ -n "$PALISADE_HOOK_REPORT" ]; then printf '%s\\t%s\\n' "$ref" "$why" >> "$PALISADE_HOOK_REPORT"; fi
    refused=1
  fi
done
[ -z "$refused" ]
`;

/** Writes the hooks folder under git's home (once per start) and returns it. */
export function installHooks(g: GitEnv): string {
  const dir = path.join(g.home, 'hooks');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'pre-receive');
  // every node writes the hook at start: a private name per writer (two hosts may share a pid), renamed into place
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, PRE_RECEIVE, { mode: 0o700 });
  fs.renameSync(tmp, file);
  fs.mkdirSync(path.join(g.home, 'hook-reports'), { recursive: true, mode: 0o700 });
  return dir;
}

/** A push's fast-forward-only refs for the hook: the `-c` settings and environment of its receive-pack. */
export function fastForwardOnly(g: GitEnv, hooksDir: string, refs: readonly { ref: string; reason: string }[]): { config: string[]; env: Record<string, string>; report: string } {
  const report = path.join(g.home, 'hook-reports', crypto.randomUUID());
  return {
    config: [`core.hooksPath=${hooksDir}`],
    env: { PALISADE_FF_ONLY: refs.map((r) => `${r.ref}\t${r.reason.replace(/[\t\n]/g, ' ')}`).join('\n'), PALISADE_HOOK_REPORT: report },
    report,
  };
}

/** The refs the hook refused (and removes its report). */
export function readHookReport(report: string): { ref: string; reason: string }[] {
  let text: string;
  try {
    text = fs.readFileSync(report, 'utf8');
  } catch {
    return [];
  }
  fs.rmSync(report, { force: true });
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const t = l.indexOf('\t');
      return { ref: t < 0 ? l : l.slice(0, t), reason: t < 0 ? '' : l.slice(t + 1) };
    });
}
