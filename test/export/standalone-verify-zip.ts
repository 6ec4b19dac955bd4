import zlib from 'node:zlib';

/**
 * A few lines that write zip archives byte by byte, for the archives no honest zip tool writes:
 * names climbing out of the bundle, a name twice, symbolic links, encrypted entries, entries that
 * inflate past the size they declare. Only what the standalone verifier's zip reader must refuse.
 */
export interface CraftedEntry {
  name: string;
  data: Buffer;
  stored: Buffer;
  method: number;
  crc: number;
  size: number;
  flags: number;
  attrs: number;
}

export function entry(name: string, content: string | Buffer, o: { deflate?: boolean; declaredSize?: number; symlink?: boolean; encrypted?: boolean } = {}): CraftedEntry {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
  const stored = o.deflate === true ? zlib.deflateRawSync(data) : data;
  return {
    name,
    data,
    stored,
    method: o.deflate === true ? 8 : 0,
    crc: zlib.crc32(data),
    size: o.declaredSize ?? data.length,
    flags: 0x800 | (o.encrypted === true ? 1 : 0),
    // Unix mode in the high 16 bits: a symbolic link (0o120777) or a regular file (0o100644).
    attrs: ((o.symlink === true ? 0o120777 : 0o100644) << 16) >>> 0,
  };
}

export function crafted(entries: CraftedEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.flags, 6);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt32LE(e.crc, 14);
    local.writeUInt32LE(e.stored.length, 18);
    local.writeUInt32LE(e.size, 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, e.stored);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE((3 << 8) | 20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(e.flags, 8);
    c.writeUInt16LE(e.method, 10);
    c.writeUInt32LE(e.crc, 16);
    c.writeUInt32LE(e.stored.length, 20);
    c.writeUInt32LE(e.size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(e.attrs, 38);
    c.writeUInt32LE(offset, 42);
    central.push(c, name);
    offset += 30 + name.length + e.stored.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}
