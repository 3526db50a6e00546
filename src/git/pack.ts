import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { objectId, type ObjectType } from './objects.ts';

const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };

export interface NewObject {
  type: ObjectType;
  content: Buffer;
}

function entryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let b = (type << 4) | (size & 0x0f);
  size = Math.floor(size / 16);
  while (size > 0) {
    bytes.push(b | 0x80);
    b = size & 0x7f;
    size = Math.floor(size / 128);
  }
  bytes.push(b);
  return Buffer.from(bytes);
}

/**
 * Writes `objects` as one pack (version 2, no deltas) with its index, the way
 * `git index-pack` would leave them: two files instead of a file per object,
 * which is what makes a commit of many small files cheap. The pack is renamed
 * into place before its index, so git never sees an index without its pack.
 * Returns the object ids in input order.
 */
export function writePack(gitDir: string, objects: NewObject[]): string[] {
  const oids = objects.map((o) => objectId(o.type, o.content));
  const unique = new Map<string, NewObject>();
  objects.forEach((o, i) => unique.set(oids[i]!, o));
  const entries: { oid: string; offset: number; crc: number }[] = [];
  const parts: Buffer[] = [];
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(unique.size, 8);
  parts.push(head);
  let offset = 12;
  for (const [oid, o] of unique) {
    const entry = Buffer.concat([entryHeader(TYPE_CODE[o.type], o.content.length), zlib.deflateSync(o.content, { level: 1 })]);
    entries.push({ oid, offset, crc: zlib.crc32(entry) });
    parts.push(entry);
    offset += entry.length;
  }
  const body = Buffer.concat(parts);
  const packSum = crypto.createHash('sha1').update(body).digest();
  const pack = Buffer.concat([body, packSum]);
  if (pack.length >= 2 ** 31) throw new Error('pack too large for 32-bit offsets');

  entries.sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  const fanout = Buffer.alloc(256 * 4);
  for (let i = 0, e = 0; i < 256; i++) {
    while (e < entries.length && parseInt(entries[e]!.oid.slice(0, 2), 16) <= i) e++;
    fanout.writeUInt32BE(e, i * 4);
  }
  const names = Buffer.concat(entries.map((e) => Buffer.from(e.oid, 'hex')));
  const crcs = Buffer.alloc(entries.length * 4);
  const offs = Buffer.alloc(entries.length * 4);
  entries.forEach((e, i) => {
    crcs.writeUInt32BE(e.crc, i * 4);
    offs.writeUInt32BE(e.offset, i * 4);
  });
  const idxBody = Buffer.concat([Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]), fanout, names, crcs, offs, packSum]);
  const idx = Buffer.concat([idxBody, crypto.createHash('sha1').update(idxBody).digest()]);

  const dir = path.join(gitDir, 'objects', 'pack');
  const base = path.join(dir, `pack-${packSum.toString('hex')}`);
  const tmp = path.join(dir, `tmp_pack_${process.pid}_${crypto.randomBytes(4).toString('hex')}`);
  fs.writeFileSync(`${tmp}.pack`, pack, { mode: 0o444 });
  fs.writeFileSync(`${tmp}.idx`, idx, { mode: 0o444 });
  fs.renameSync(`${tmp}.pack`, `${base}.pack`);
  fs.renameSync(`${tmp}.idx`, `${base}.idx`);
  return oids;
}
