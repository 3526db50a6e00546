import { Transform, type TransformCallback } from 'node:stream';

/** One `<old> <new> <ref>` command of a push; a side all zeros means created or deleted. */
export interface PushCommand {
  oldOid: string;
  newOid: string;
  ref: string;
}

const COMMAND_RE = /^([0-9a-f]{40}(?:[0-9a-f]{24})?) ([0-9a-f]{40}(?:[0-9a-f]{24})?) (\S+)$/;
const MAX_PKT = 65520;

/**
 * Passes a receive-pack request through unchanged while reading the command
 * list at its head (gitprotocol-pack: `shallow` lines, then pkt-lines
 * `<old> <new> <ref>`, capabilities after a NUL on the first, or the same
 * lines inside a push certificate; a flush-pkt ends them). Once the flush
 * has passed, or the head is not pkt-lines at all, it stops looking and only
 * forwards bytes. What it collected says which refs the push asked to move;
 * whether they moved is for the caller to check afterwards.
 */
export class PushCommandReader extends Transform {
  readonly commands: PushCommand[] = [];
  /** bytes of an unfinished pkt-line; null once the command list is over */
  private pending: Buffer | null = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.pending) this.scan(chunk);
    cb(null, chunk);
  }

  private scan(chunk: Buffer): void {
    const buf = this.pending!.length ? Buffer.concat([this.pending!, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const head = buf.toString('latin1', off, off + 4);
      const len = /^[0-9a-f]{4}$/i.test(head) ? parseInt(head, 16) : -1;
      // a flush (0000) ends the commands; a delimiter, a malformed length or garbage ends the looking
      if (len < 4 || len > MAX_PKT) {
        this.pending = null;
        return;
      }
      if (buf.length - off < len) break;
      this.line(buf.subarray(off + 4, off + len));
      off += len;
    }
    this.pending = Buffer.from(buf.subarray(off));
  }

  private line(raw: Buffer): void {
    let s = raw.toString('latin1');
    const nul = s.indexOf('\0');
    if (nul >= 0) s = s.slice(0, nul);
    if (s.endsWith('\n')) s = s.slice(0, -1);
    const m = COMMAND_RE.exec(s);
    if (m) this.commands.push({ oldOid: m[1]!, newOid: m[2]!, ref: Buffer.from(m[3]!, 'latin1').toString('utf8') });
  }
}
