/**
 * Redis Cluster slots and the project's partitions. The slot of a key is computed the
 * same way in standalone mode, so the partition of a key never depends on the topology.
 */

export const SLOT_COUNT = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-XMODEM (poly 0x1021, init 0) of bytes [start, end). */
function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/**
 * Hash slot of a key: only the part between the first '{' and the next '}' is hashed
 * when that part is non-empty (a hash tag), else the whole key. Strings count as UTF-8.
 */
export function keySlot(key: Buffer | string): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes, open + 1, close) & (SLOT_COUNT - 1);
  }
  return crc16(bytes, 0, bytes.length) & (SLOT_COUNT - 1);
}

export function partitionOfSlot(slot: number, partitions: number): number {
  return Math.floor((slot * partitions) / SLOT_COUNT);
}

export function partitionOfKey(key: Buffer | string, partitions: number): number {
  return partitionOfSlot(keySlot(key), partitions);
}

/**
 * Inclusive slot range of a partition: the slots s with floor(s·P/16384) = p, that is
 * ceil(p·16384/P) .. ceil((p+1)·16384/P) - 1. With P ≤ 16384 every range holds a slot.
 */
export function slotRangeOfPartition(partition: number, partitions: number): { first: number; last: number } {
  const first = Math.ceil((partition * SLOT_COUNT) / partitions);
  const last = Math.ceil(((partition + 1) * SLOT_COUNT) / partitions) - 1;
  return { first, last };
}
