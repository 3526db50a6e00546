import { parseUploadConfig, retryingOnce, type UploadConfig, withProbeRepo } from './ls-refs.ts';
import { type GitEnv, runGit } from './runner.ts';
import { SKELETON_CONFIG } from './skeleton.ts';

/**
 * The protocol v2 capability advertisement of `git upload-pack` (`info/refs` with
 * `Git-Protocol: version=2`): the same bytes for every repository with the same config, since
 * it lists no refs (agent=git/x.y.z, ls-refs=unborn, fetch=… filter, server-option,
 * object-format, object-info for git 2.39). Computed once per process by the installed git
 * itself, on an empty repository written with the config every repository is created with, in
 * the same pinned environment requests are served in; served from memory afterwards to
 * repositories whose config says the same (`get`).
 */
export class V2Advertisement {
  private bytes: Buffer | undefined;
  private readonly skeleton = parseUploadConfig(SKELETON_CONFIG)!;
  /** whether the installed git is one the in-process ref listings were compared with (see testedGit) */
  private tested = false;

  constructor(private readonly g: GitEnv) {}

  /** Computes the text once, on first use (retryingOnce). */
  readonly ready = retryingOnce(() => this.compute(this.g));

  private async compute(g: GitEnv): Promise<void> {
    await withProbeRepo(g, 'v2-advertisement', async (dir) => {
      const r = await runGit(g, ['upload-pack', '--stateless-rpc', '--advertise-refs', dir], { timeoutMs: 30_000, env: { GIT_PROTOCOL: 'version=2' }, maxOutput: 64 * 1024 });
      // only a well-formed v2 advertisement: `version 2`, then capabilities, then a flush
      const out = r.stdout;
      if (r.code === 0 && out.subarray(0, 14).toString('latin1') === '000eversion 2\n' && out.subarray(-4).toString('latin1') === '0000') {
        this.bytes = out;
        this.tested = /agent=git\/2\.3[789]\./.test(out.toString('latin1'));
      }
    });
  }

  /**
   * Whether the installed git is one whose ref listings the in-process answers were compared
   * with byte for byte (2.37 to 2.39); another git is asked itself. False before `ready`.
   */
  get testedGit(): boolean {
    return this.tested;
  }

  /**
   * The advertisement for a repository whose upload config is `cfg`, when git would send the
   * bytes computed once; undefined when git must be asked (not computed, or another config).
   */
  get(cfg: UploadConfig | undefined): Buffer | undefined {
    if (!this.bytes || !cfg || cfg.allowFilter !== this.skeleton.allowFilter) return undefined;
    return this.bytes;
  }
}

/** Whether a validated `Git-Protocol` value asks for protocol v2 exactly as git clients send it. */
export const isV2 = (protocol: string | undefined): boolean => protocol === 'version=2';
