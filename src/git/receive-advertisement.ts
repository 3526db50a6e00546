import fs from 'node:fs';
import path from 'node:path';
import { isHidden, listRefs, parseConfigEntries, retryingOnce, snapshot, withProbeRepo } from './ls-refs.ts';
import { pktLine } from './smart-http.ts';
import { type GitEnv, runGit } from './runner.ts';

const ZERO_OID = '0'.repeat(40);

/** Config keys that do not change receive-pack's advertisement (lower case). */
const IGNORED_KEYS = new Set(['core.filemode', 'core.bare', 'core.logallrefupdates', 'http.receivepack', 'receive.denynonfastforwards']);
const IGNORED_SECTIONS = new Set(['uploadpack', 'gc', 'lsrefs']);

/**
 * `receive.hideRefs` and `transfer.hideRefs` of a repository's config, in file order, when every
 * other key in it is one that does not change receive-pack's advertisement; undefined otherwise
 * (`receive.advertiseAtomic`, `receive.certNonceSeed`, `transfer.advertiseSID`, an include, …).
 */
export function receiveHideRefs(text: string): string[] | undefined {
  const entries = parseConfigEntries(text);
  if (!entries) return undefined;
  const hide: string[] = [];
  for (const [key, value] of entries) {
    if (IGNORED_SECTIONS.has(key.slice(0, key.indexOf('.'))) || IGNORED_KEYS.has(key)) continue;
    if (key === 'core.repositoryformatversion' && value === '0') continue;
    if (key === 'receive.hiderefs' || key === 'transfer.hiderefs') hide.push(value.replace(/\/+$/, ''));
    else return undefined;
  }
  return hide;
}

/**
 * receive-pack's protocol v0 ref advertisement (`info/refs?service=git-receive-pack`, the
 * first thing every push asks for) written in process, with the bytes `git receive-pack
 * --advertise-refs` 2.37–2.39 sends (builtin/receive-pack.c write_head_info): every visible
 * ref under `refs/` sorted by name, symbolic refs at their target's oid (dangling ones left
 * out), no HEAD, no peeled lines, the capabilities after a NUL on the first line (or on a
 * `capabilities^{}` line when there is no ref). The capability list is static text per git
 * version and config: computed once by the installed git on an empty repository with the
 * config every repository is created with. Repositories with alternates (`.have` lines), a
 * `shallow` file, or any config key this code does not know are left to git.
 */
export class ReceiveAdvertisement {
  private caps: string | undefined;

  constructor(private readonly g: GitEnv) {}

  /** Computes the text once, on first use (retryingOnce). */
  readonly ready = retryingOnce(() => this.compute(this.g));

  private async compute(g: GitEnv): Promise<void> {
    await withProbeRepo(g, 'receive-advertisement', async (dir) => {
      const r = await runGit(g, ['receive-pack', '--stateless-rpc', '--advertise-refs', dir], { timeoutMs: 30_000, maxOutput: 64 * 1024 });
      const text = r.stdout.toString('latin1');
      const m = /^[0-9a-f]{4}0{40} capabilities\^\{\}\0([\x20-\x7e]+)\n0000$/.exec(text);
      if (r.code === 0 && m && pktLine(`${ZERO_OID} capabilities^{}\0${m[1]}\n`).toString('latin1') + '0000' === text) this.caps = m[1];
    });
  }

  /** The advertisement of the repository at `dir`, pkt-lines and the closing flush; undefined when git must answer. */
  get(dir: string): Buffer | undefined {
    if (this.caps === undefined) return undefined;
    try {
      const hide = receiveHideRefs(fs.readFileSync(path.join(dir, 'config'), 'utf8'));
      if (!hide) return undefined;
      if (fs.existsSync(path.join(dir, 'objects', 'info', 'alternates')) || fs.existsSync(path.join(dir, 'shallow'))) return undefined;
      const s = snapshot(dir);
      const out: Buffer[] = [];
      for (const { name, oid } of listRefs(s, (n) => !isHidden(hide, n))) {
        out.push(pktLine(out.length ? `${oid} ${name}\n` : `${oid} ${name}\0${this.caps}\n`));
      }
      if (!out.length) out.push(pktLine(`${ZERO_OID} capabilities^{}\0${this.caps}\n`));
      out.push(Buffer.from('0000'));
      return Buffer.concat(out);
    } catch {
      // a doubt (see ls-refs.ts), a file-system error: git answers
      return undefined;
    }
  }
}
