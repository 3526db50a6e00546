import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import yauzl from 'yauzl';
import { DomainError, invalid } from '../domain/errors.ts';

/**
 * Reading tar, tar.gz and zip archives as streams, in process: nothing is
 * extracted, no link is followed, and every limit is checked while the bytes
 * flow, before anything is buffered. The caller gets one entry at a time and
 * must read or skip its body before asking for the next.
 */

export interface ArchiveLimits {
  /** bytes the archive may unpack to (tar: the tar stream after gunzip; zip: the entries' sizes) */
  maxUnpackedBytes: number;
  /** entries of any kind (files, folders, links) */
  maxEntries: number;
  /** bytes of one entry */
  maxEntryBytes: number;
  /** unpacked / compressed bytes, checked once past RATIO_FLOOR */
  maxRatio: number;
}

/** Below this many unpacked bytes the ratio is not checked: small archives of empty or repetitive files are fine. */
export const RATIO_FLOOR = 10 * 1024 * 1024;
/** Longest entry name or link target, in bytes (Linux's PATH_MAX). */
export const MAX_NAME_BYTES = 4096;
/** All entry names together: the importer keeps them to check file/folder clashes and hard links. */
const MAX_ALL_NAMES_BYTES = 16 * 1024 * 1024;

export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface ArchiveEntry {
  /** the name as the archive spells it (not yet checked) */
  name: string;
  kind: EntryKind;
  executable: boolean;
  /** bytes of the body (file, or a zip symlink whose body is its target) */
  size: number;
  /** symlink target (tar) or the name a hard link refers to */
  linkTarget?: string;
  /** the body, streamed; yields exactly `size` bytes or throws */
  body(): AsyncIterable<Buffer>;
  /** drops the body without keeping it */
  skip(): Promise<void>;
}

export const importTooLarge = (message: string) => invalid(message, 'IMPORT_TOO_LARGE');
/** An entry name fit for a message: quoted, control characters escaped, truncated. */
export const shown = (name: string) => JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);

/** Counts what an archive unpacks to and stops it at the limits. */
class Meter {
  unpacked = 0;
  entries = 0;
  private names = 0;

  constructor(private readonly limits: ArchiveLimits) {}

  /** A new entry with this name and announced size. */
  entry(name: string, size: number): void {
    if (++this.entries > this.limits.maxEntries) throw importTooLarge(`The archive holds more than ${this.limits.maxEntries} entries`);
    const nameBytes = Buffer.byteLength(name);
    if (nameBytes > MAX_NAME_BYTES) throw invalid(`The archive holds a name longer than ${MAX_NAME_BYTES} bytes: ${shown(name)}`, 'INVALID_FILE_PATH');
    this.names += nameBytes;
    if (this.names > MAX_ALL_NAMES_BYTES) throw importTooLarge(`The archive's names add up to more than ${MAX_ALL_NAMES_BYTES} bytes`);
    if (size > this.limits.maxEntryBytes) throw importTooLarge(`The archive entry ${shown(name)} is larger than ${this.limits.maxEntryBytes} bytes`);
  }

  /** Bytes about to be unpacked, out of `compressed` bytes read so far. */
  add(bytes: number, compressed: number): void {
    this.unpacked += bytes;
    this.check(this.unpacked, compressed);
  }

  /** Throws when `unpacked` bytes would pass the total or the ratio limit. */
  check(unpacked: number, compressed: number): void {
    if (unpacked > this.limits.maxUnpackedBytes) throw importTooLarge(`The archive unpacks to more than ${this.limits.maxUnpackedBytes} bytes`);
    if (unpacked > RATIO_FLOOR && unpacked > this.limits.maxRatio * Math.max(compressed, 1)) throw importTooLarge(`The archive expands more than ${this.limits.maxRatio} times its compressed size`);
  }
}

const GZIP_MAGIC = [0x1f, 0x8b];
const startsWith = (b: Buffer, magic: number[]) => b.length >= magic.length && magic.every((m, i) => b[i] === m);

/**
 * The plain tar bytes of `src`: gunzipped here when it starts with gzip's
 * magic, so that compressed-in and unpacked-out bytes can be compared as they
 * flow. Anything compressed twice is refused (tar's parser would otherwise
 * gunzip the inner layer itself, unmetered).
 */
async function* plainTar(src: Readable, meter: Meter): AsyncGenerator<Buffer> {
  let head = Buffer.alloc(0);
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  while (head.length < 2) {
    const r = await it.next();
    if (r.done) break;
    head = Buffer.concat([head, r.value]);
  }
  const rest = async function* () {
    yield head;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  };
  if (!startsWith(head, GZIP_MAGIC)) {
    for await (const chunk of rest()) {
      meter.add(chunk.length, meter.unpacked + chunk.length);
      yield chunk;
    }
    return;
  }
  const gunzip = zlib.createGunzip();
  const input = Readable.from(rest(), { objectMode: false, highWaterMark: 64 * 1024 });
  input.on('error', (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  let first = true;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      if (first && startsWith(chunk, GZIP_MAGIC)) throw invalid('The archive is compressed twice; give a tar or tar.gz archive');
      first = false;
      // bytesWritten: compressed bytes zlib has consumed so far (not what the download read ahead)
      meter.add(chunk.length, gunzip.bytesWritten);
      yield chunk;
    }
  } catch (e) {
    if (e instanceof DomainError) throw e;
    // a download failure reaches us through the gunzip stream; a zlib failure is the archive's
    if ((e as { code?: string }).code?.startsWith('Z_')) throw invalid('The archive is not a valid gzip file');
    throw e;
  } finally {
    input.destroy();
    gunzip.destroy();
  }
}

const TAR_FILE = new Set(['File', 'OldFile', 'ContiguousFile']);
const TAR_DIR = new Set(['Directory', 'GNUDumpDir']);

/**
 * The entries of a tar or tar.gz stream, in archive order. `src` is read only
 * as fast as the entries are consumed: the parser holds at most one chunk.
 */
export async function* readTar(src: Readable, limits: ArchiveLimits): AsyncGenerator<ArchiveEntry> {
  const meter = new Meter(limits);
  // strict: a bad checksum or a truncated archive is an error, not a warning to skip past
  const parser = new Parser({ strict: true, brotli: false, zstd: false });
  const queue: ReadEntry[] = [];
  let failure: unknown;
  let ended = false;
  let stopped = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let current: ReadEntry | undefined;
  const fail = (e: unknown) => {
    if (stopped) return; // the caller is gone: what the source says after we closed it is moot
    failure ??= e;
    // the caller may be waiting for the body of the current entry: end that wait too
    current?.destroy(e instanceof Error ? e : new Error('archive failed'));
    poke();
  };
  parser.on('entry', (e: ReadEntry) => {
    e.on('error', () => undefined); // a destroyed entry reports to whoever reads it, never as a crash
    queue.push(e);
    poke();
  });
  // ignored: an entry type the parser does not know (sparse, volume header...) or an oversized pax header
  parser.on('ignoredEntry', (e: ReadEntry) => fail(invalid(`The archive entry ${shown(e.path)} has an unsupported type`, 'IMPORT_UNSUPPORTED_ENTRY')));
  parser.on('error', (e: unknown) => fail(e instanceof DomainError ? e : invalid('The archive is not a valid tar file')));
  parser.on('end', () => {
    ended = true;
    poke();
  });

  const pump = async () => {
    for await (const chunk of plainTar(src, meter)) {
      if (stopped || failure) return;
      if (!parser.write(chunk)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            parser.off('drain', go);
            resolve();
          };
          parser.on('drain', go);
          release = go;
        });
        release = undefined;
      }
    }
    if (!stopped) parser.end();
  };
  let release: (() => void) | undefined;
  const pumping = pump().catch(fail);

  try {
    for (;;) {
      if (failure) throw failure;
      const e = queue.shift();
      if (e) {
        current = e;
        yield tarEntry(e, meter, () => failure);
        // an entry the caller neither read nor skipped is drained, so the parser can go on
        if (!e.emittedEnd) await drain(e).catch(() => undefined); // a failure is thrown at the top of the loop
        current = undefined;
        continue;
      }
      if (ended) break;
      await new Promise<void>((r) => (wake = r));
    }
    await pumping;
    if (failure) throw failure;
  } finally {
    stopped = true;
    current = undefined;
    release?.();
    src.destroy();
    parser.removeAllListeners('entry');
  }
}

async function drain(e: ReadEntry): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    e.on('end', resolve);
    e.on('error', reject);
    e.resume();
  });
}

/** The body of a tar entry: exactly its announced size, or the reader's failure (limits, a truncated archive). */
async function* tarBody(e: ReadEntry, failure: () => unknown): AsyncGenerator<Buffer> {
  let seen = 0;
  try {
    for await (const chunk of e as AsyncIterable<Buffer>) {
      seen += chunk.length;
      yield chunk;
    }
  } catch {
    throw failure() ?? invalid('The archive is not a valid tar file');
  }
  if (seen !== e.size) throw failure() ?? invalid('The archive is not a valid tar file');
}

function tarEntry(e: ReadEntry, meter: Meter, failure: () => unknown): ArchiveEntry {
  const name = e.path;
  const type = e.type;
  const kind: EntryKind | undefined = TAR_FILE.has(type) ? 'file' : TAR_DIR.has(type) ? 'dir' : type === 'SymbolicLink' ? 'symlink' : type === 'Link' ? 'hardlink' : undefined;
  if (!kind) throw invalid(`The archive entry ${shown(name)} is not a file, folder or link (${type})`, 'IMPORT_UNSUPPORTED_ENTRY');
  meter.entry(name, e.size);
  // Announced sizes count before any byte is read, so a bomb stops at its first header past the limit.
  meter.check(meter.unpacked + e.size, Infinity);
  if (kind === 'symlink' || kind === 'hardlink') {
    if (!e.linkpath || Buffer.byteLength(e.linkpath) > MAX_NAME_BYTES) throw invalid(`The archive link ${shown(name)} has no target or a target longer than ${MAX_NAME_BYTES} bytes`, 'INVALID_FILE_PATH');
  }
  return {
    name,
    kind,
    executable: ((e.mode ?? 0) & 0o100) !== 0,
    size: kind === 'file' ? e.size : 0,
    linkTarget: e.linkpath,
    body: () => tarBody(e, failure),
    skip: () => (e.emittedEnd ? Promise.resolve() : drain(e).catch(() => Promise.reject(failure() ?? invalid('The archive is not a valid tar file')))),
  };
}

/**
 * What yauzl reads a downloaded zip through: slices of the chunks as they
 * arrived. Joining them into one Buffer first (yauzl.fromBuffer) would hold
 * the archive twice at the moment of the copy.
 */
class ChunkReader extends yauzl.RandomAccessReader {
  private readonly starts: number[] = [];
  readonly size: number;

  constructor(private readonly chunks: readonly Buffer[]) {
    super();
    let at = 0;
    for (const c of chunks) {
      this.starts.push(at);
      at += c.length;
    }
    this.size = at;
  }

  /** The pieces of [start, end) in order. */
  private *slices(start: number, end: number): Generator<Buffer> {
    // the last chunk starting at or before `start` (binary search)
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= start) lo = mid;
      else hi = mid - 1;
    }
    for (let i = lo, pos = start; pos < end && i < this.chunks.length; i++) {
      const from = pos - this.starts[i]!;
      const to = Math.min(this.chunks[i]!.length, end - this.starts[i]!);
      yield this.chunks[i]!.subarray(from, to);
      pos = this.starts[i]! + to;
    }
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return Readable.from(this.slices(start, end), { objectMode: false });
  }

  /** Small reads (headers, the central directory) are copied directly, as yauzl's own buffer reader does. */
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    if (position + length > this.size) {
      setImmediate(() => callback(new Error('read past the end')));
      return;
    }
    let at = offset;
    for (const piece of this.slices(position, position + length)) at += piece.copy(buffer, at);
    setImmediate(() => callback(null));
  }
}

/**
 * The entries of a zip archive held in memory as the chunks it was downloaded
 * in (zip needs its central directory, at the end). Sizes and ratios are
 * checked from the directory before an entry is inflated, and again while its
 * bytes flow; yauzl checks that an entry inflates to exactly its announced size.
 */
export async function* readZip(chunks: readonly Buffer[], limits: ArchiveLimits): AsyncGenerator<ArchiveEntry> {
  const meter = new Meter(limits);
  const reader = new ChunkReader(chunks);
  let zip: yauzl.ZipFile;
  try {
    // decodeStrings off: names are decoded and judged by us (yauzl's messages name paths its own way)
    zip = await yauzl.fromRandomAccessReaderPromise(reader, reader.size, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: true });
  } catch {
    throw invalid('The archive is not a valid zip file');
  }
  if (zip.entryCount > limits.maxEntries) throw importTooLarge(`The archive holds more than ${limits.maxEntries} entries`);
  let announced = 0;
  try {
    const entries = zip.eachEntry();
    for (;;) {
      let r: IteratorResult<yauzl.Entry>;
      try {
        r = await entries.next();
      } catch {
        throw invalid('The archive is not a valid zip file');
      }
      if (r.done) break;
      const ze = r.value;
      const name = yauzl.getFileNameLowLevel(ze.generalPurposeBitFlag, ze.fileNameRaw, ze.extraFields, true);
      meter.entry(name, ze.uncompressedSize);
      // Before inflating: the whole archive's announced size and ratio, then this entry's own ratio.
      announced += ze.uncompressedSize;
      meter.check(announced, reader.size);
      if (ze.uncompressedSize > RATIO_FLOOR && ze.uncompressedSize > limits.maxRatio * Math.max(ze.compressedSize, 1)) {
        throw importTooLarge(`The archive expands more than ${limits.maxRatio} times its compressed size (entry ${shown(name)})`);
      }
      yield zipEntry(zip, ze, name, meter, reader.size);
    }
  } finally {
    zip.close();
  }
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function zipEntry(zip: yauzl.ZipFile, ze: yauzl.Entry, name: string, meter: Meter, compressed: number): ArchiveEntry {
  // Unix (3) and macOS (19) keep st_mode in the high 16 bits of the external attributes.
  const madeBy = ze.versionMadeBy >> 8;
  const mode = madeBy === 3 || madeBy === 19 ? ze.externalFileAttributes >>> 16 : 0;
  const type = mode & S_IFMT;
  let kind: EntryKind;
  if (type === S_IFLNK) kind = 'symlink';
  else if (type === S_IFDIR || name.endsWith('/') || (!type && (ze.externalFileAttributes & 0x10) !== 0)) kind = 'dir';
  else if (type === S_IFREG || type === 0) kind = 'file';
  else throw invalid(`The archive entry ${shown(name)} is not a file, folder or link`, 'IMPORT_UNSUPPORTED_ENTRY');
  if (kind === 'symlink' && ze.uncompressedSize > MAX_NAME_BYTES) throw invalid(`The archive link ${shown(name)} has a target longer than ${MAX_NAME_BYTES} bytes`, 'INVALID_FILE_PATH');
  const size = kind === 'dir' ? 0 : ze.uncompressedSize;
  const body = async function* (): AsyncGenerator<Buffer> {
    if (size === 0) return;
    if (ze.isEncrypted()) throw invalid(`The archive entry ${shown(name)} is encrypted`, 'IMPORT_UNSUPPORTED_ENTRY');
    if (ze.compressionMethod !== 0 && ze.compressionMethod !== 8) throw invalid(`The archive entry ${shown(name)} uses an unsupported compression method`, 'IMPORT_UNSUPPORTED_ENTRY');
    // a stored entry is copied as is: its two sizes must agree (yauzl counts only inflated bytes)
    if (ze.compressionMethod === 0 && ze.compressedSize !== ze.uncompressedSize) throw invalid('The archive is not a valid zip file');
    let stream: Readable;
    try {
      stream = await zip.openReadStreamPromise(ze);
    } catch {
      throw invalid('The archive is not a valid zip file');
    }
    let seen = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        seen += chunk.length;
        if (seen > size) throw invalid('The archive is not a valid zip file');
        meter.add(chunk.length, compressed);
        yield chunk;
      }
    } catch (e) {
      if (e instanceof DomainError) throw e;
      throw invalid('The archive is not a valid zip file');
    } finally {
      stream.destroy();
    }
    if (seen !== size) throw invalid('The archive is not a valid zip file');
  };
  return {
    name,
    kind,
    executable: (mode & 0o100) !== 0,
    size,
    body,
    // zip reads each entry on demand: skipping inflates nothing
    skip: () => Promise.resolve(),
  };
}
