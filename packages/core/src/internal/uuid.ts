const hex: ReadonlyArray<string> = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

let lastMillis = -1
let counter = 0

// random bytes drawn in bulk: one call to the system's generator per 512 ids instead of one per id
const pool = new Uint8Array(4096)
let poolOffset = pool.length

const randomBytes = (target: Uint8Array): void => {
  if (poolOffset + target.length > pool.length) {
    crypto.getRandomValues(pool)
    poolOffset = 0
  }
  target.set(pool.subarray(poolOffset, poolOffset + target.length))
  poolOffset += target.length
}

const format = (bytes: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += "-"
    out += hex[bytes[i]!]
  }
  return out
}

/** RFC 9562 UUID version 8 (custom) from the first 16 bytes of a hash, with the version and variant bits set. */
export const v8 = (hash: Uint8Array): string => {
  const bytes = hash.slice(0, 16)
  bytes[6] = 0x80 | (bytes[6]! & 0x0f)
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  return format(bytes)
}

/**
 * RFC 9562 UUID version 7: 48 bits of Unix milliseconds, then a 12-bit counter that keeps ids made within one
 * millisecond in order, then 62 random bits.
 */
export const v7 = (millis: number): string => {
  if (millis > lastMillis) {
    lastMillis = millis
    counter = 0
  } else if (++counter > 0xfff) {
    // the counter overflowed: borrow the next millisecond rather than lose the order
    lastMillis += 1
    counter = 0
  }
  const time = Math.max(millis, lastMillis)
  const bytes = new Uint8Array(16)
  randomBytes(bytes.subarray(8))
  bytes[0] = Math.floor(time / 2 ** 40) & 0xff
  bytes[1] = Math.floor(time / 2 ** 32) & 0xff
  bytes[2] = (time >>> 24) & 0xff
  bytes[3] = (time >>> 16) & 0xff
  bytes[4] = (time >>> 8) & 0xff
  bytes[5] = time & 0xff
  bytes[6] = 0x70 | (counter >>> 8)
  bytes[7] = counter & 0xff
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  return format(bytes)
}
