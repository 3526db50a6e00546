import { execFile } from 'node:child_process';

export interface MatchMode {
  isRegex: boolean;
  caseSensitive: boolean;
  wholeWord: boolean;
}

/** Flags shared by git grep and GNU grep: extended regex or fixed string, case, whole word. */
export function grepFlags(m: MatchMode): string[] {
  const f = [m.isRegex ? '-E' : '-F'];
  if (!m.caseSensitive) f.push('-i');
  if (m.wholeWord) f.push('-w');
  return f;
}

export interface LineMatch {
  /** 0-based index of the input line */
  index: number;
  /** 0-based byte offset of the match in its line */
  start: number;
  length: number;
}

/**
 * Finds matches in `lines` with GNU grep (automaton-based, so a hostile
 * pattern cannot backtrack forever in our process), killed after `timeoutMs`.
 * Lines must not contain newlines.
 */
export function grepLines(lines: string[], query: string, mode: MatchMode, timeoutMs: number): Promise<LineMatch[]> {
  if (lines.length === 0) return Promise.resolve([]);
  const input = Buffer.from(lines.join('\n') + '\n');
  const starts: number[] = [];
  let off = 0;
  for (const l of lines) {
    starts.push(off);
    off += Buffer.byteLength(l) + 1;
  }
  return new Promise((resolve, reject) => {
    const child = execFile('grep', ['-n', '-o', '-b', ...grepFlags(mode), '-e', query], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, env: { LC_ALL: 'C.UTF-8', PATH: process.env.PATH } }, (err, stdout) => {
      const code = (err as { code?: unknown } | null)?.code;
      if (err && code !== 1) return reject(new Error((err as { killed?: boolean }).killed ? 'search took too long' : 'invalid search pattern'));
      const out: LineMatch[] = [];
      for (const row of String(stdout).split('\n')) {
        const m = /^(\d+):(\d+):(.*)$/s.exec(row);
        if (!m) continue;
        const index = Number(m[1]) - 1;
        out.push({ index, start: Number(m[2]) - (starts[index] ?? 0), length: Buffer.byteLength(m[3]!) });
      }
      resolve(out);
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input);
  });
}

/** Checks a pattern before use: GNU grep compiles it (ERE) or refuses; returns the error text or undefined. */
export function checkPattern(query: string, mode: MatchMode): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = execFile('grep', ['-c', ...grepFlags(mode), '-e', query], { timeout: 2000, env: { LC_ALL: 'C.UTF-8', PATH: process.env.PATH } }, (err, _o, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve(err && code !== 1 ? String(stderr).replace(/^grep: /, '').trim() || 'invalid pattern' : undefined);
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end('');
  });
}
