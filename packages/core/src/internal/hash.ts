/**
 * FNV-1a, 32 bits, over the UTF-16 code units of a string: a stable, well-spread hash that any process (and any
 * language) computes the same way, so that partitions agree across processes and releases.
 */
export const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}
