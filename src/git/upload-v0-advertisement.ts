import fs from 'node:fs';
import path from 'node:path';
import type { CatFilePool } from './cat-file.ts';
import { isHidden, listRefs, parseUploadConfig, peelObject, resolve, retryingOnce, snapshot, type UploadConfig, withProbeRepo } from './ls-refs.ts';
import { type GitEnv, runGit } from './runner.ts';
import { SKELETON_CONFIG } from './skeleton.ts';
import { pktLine } from './smart-http.ts';

const PROBE_OID = '1'.repeat(40);
const PROBE_SYMREF = ' symref=HEAD:refs/heads/main';

/**
 * upload-pack's protocol v0 ref advertisement (`info/refs?service=git-upload-pack` without
 * `Git-Protocol`, what clients older than git 2.26 or set to `protocol.version=0` ask for)
 * written in process, with the bytes of `git upload-pack --advertise-refs` 2.37–2.39
 * (upload-pack.c send_ref): HEAD, then every visible ref sorted by name, each followed by its
 * `^{}` line when it peels; the capabilities after a NUL on the first line, with
 * `symref=HEAD:<target>`. The capability text is git's own, taken once from a probe
 * repository whose HEAD is `refs/heads/main`. An unborn or detached HEAD, a `shallow` file, or
 * a config this code does not know: git answers.
 */
export class UploadV0Advertisement {
  private caps: { before: string; after: string } | undefined;
  private readonly skeleton = parseUploadConfig(SKELETON_CONFIG)!;

  constructor(private readonly g: GitEnv) {}

  /** Computes the capability text once, on first use (retryingOnce). */
  readonly ready = retryingOnce(() => this.compute());

  private async compute(): Promise<void> {
    // a ref at an object that does not exist: advertised all the same, never peeled
    const probe = (dir: string) => fs.writeFileSync(path.join(dir, 'refs', 'heads', 'main'), `${PROBE_OID}\n`);
    await withProbeRepo(this.g, 'v0-advertisement', async (dir) => {
      const r = await runGit(this.g, ['upload-pack', '--stateless-rpc', '--advertise-refs', dir], { timeoutMs: 30_000, maxOutput: 64 * 1024 });
      const text = r.stdout.toString('latin1');
      const m = new RegExp(`^[0-9a-f]{4}${PROBE_OID} HEAD\\0([\\x20-\\x7e]+)\\n`).exec(text);
      if (r.code !== 0 || !m) return;
      const caps = m[1]!;
      const at = caps.indexOf(PROBE_SYMREF);
      if (at < 0 || caps.indexOf(PROBE_SYMREF, at + 1) >= 0) return;
      const expected = Buffer.concat([pktLine(`${PROBE_OID} HEAD\0${caps}\n`), pktLine(`${PROBE_OID} refs/heads/main\n`), Buffer.from('0000')]).toString('latin1');
      if (expected === text) this.caps = { before: caps.slice(0, at), after: caps.slice(at + PROBE_SYMREF.length) };
    }, probe);
  }

  /** The advertisement of the repository at `dir` (config `cfg`), pkt-lines and the flush; undefined when git must answer. */
  async get(dir: string, cfg: UploadConfig | undefined, pool: CatFilePool): Promise<Buffer | undefined> {
    if (!this.caps || !cfg || cfg.allowFilter !== this.skeleton.allowFilter) return undefined;
    try {
      if (fs.existsSync(path.join(dir, 'shallow'))) return undefined;
      const s = snapshot(dir);
      const head = resolve(s, s.head);
      if (head.oid === undefined || s.head.symref === undefined) return undefined;
      const caps = `${this.caps.before} symref=HEAD:${head.target}${this.caps.after}`;
      const refs: { name: string; oid: string; peeled: Promise<string | undefined> }[] = [];
      if (!isHidden(cfg.hideRefs, 'HEAD')) refs.push({ name: 'HEAD', oid: head.oid, peeled: peelObject(pool, dir, head.oid) });
      for (const { name, oid, packed } of listRefs(s, (n) => !isHidden(cfg.hideRefs, n))) {
        refs.push({ name, oid, peeled: packed ? Promise.resolve(packed.peeled) : peelObject(pool, dir, oid) });
      }
      if (!refs.length) return undefined;
      // all at once: a peel that fails must not wait unhandled behind another
      const peels = await Promise.all(refs.map((r) => r.peeled));
      const out: Buffer[] = [];
      for (const [i, r] of refs.entries()) {
        out.push(pktLine(i === 0 ? `${r.oid} ${r.name}\0${caps}\n` : `${r.oid} ${r.name}\n`));
        const peeled = peels[i];
        if (peeled) out.push(pktLine(`${peeled} ${r.name}^{}\n`));
      }
      out.push(Buffer.from('0000'));
      return Buffer.concat(out);
    } catch {
      // a doubt (see ls-refs.ts), a file-system error, a reader gone: git answers
      return undefined;
    }
  }
}
