// The KV block pool of one engine: ref-counted blocks, a prefix cache keyed by chained block hash, and
// an LRU of cached-but-unreferenced blocks that allocation evicts head-first. Typed arrays and intrusive
// linked lists keep every operation O(1) and allocation-free, because the simulator runs millions of
// block operations per simulated hour.
//
// Deliberate difference from vLLM v1 (`FreeKVCacheBlockQueue`): vLLM keeps ONE free queue holding both
// never-cached and cached blocks. Here plain free blocks (no hash: never filled, partial tail blocks,
// generated-token blocks) are handed out before any cached block is evicted, so a cached prefix survives
// as long as there is uncached space — the behaviour the prefix-aware router assumes.
import type { BlockHash } from "../engine/types.js";

const NONE = -1;

export class BlockPool {
  readonly numBlocks: number;
  /** References from running requests; 0 = free (plain or cached). */
  private readonly refCount: Int32Array;
  /** The hash a block is registered under in `cached`, undefined for plain blocks. */
  private readonly hashOf: (BlockHash | undefined)[];
  /** Prefix cache: sequence hash → block index. Holds referenced and cached-free blocks. */
  private readonly cached = new Map<BlockHash, number>();
  /** Stack of plain free blocks. */
  private readonly plainFree: Int32Array;
  private plainFreeTop: number;
  /** Intrusive doubly linked LRU of cached free blocks: head = least recently used = next evicted. */
  private readonly lruPrev: Int32Array;
  private readonly lruNext: Int32Array;
  private lruHead = NONE;
  private lruTail = NONE;
  private cachedFree = 0;
  /** Sink for hashes evicted from the cache (KV `removed` events), null when not collected. */
  evicted: BlockHash[] | null = null;

  constructor(numBlocks: number) {
    this.numBlocks = numBlocks;
    this.refCount = new Int32Array(numBlocks);
    this.hashOf = new Array<BlockHash | undefined>(numBlocks).fill(undefined);
    this.plainFree = new Int32Array(numBlocks);
    // Block 0 handed out first: purely cosmetic, makes hand-computed test schedules readable.
    for (let i = 0; i < numBlocks; i++) this.plainFree[i] = numBlocks - 1 - i;
    this.plainFreeTop = numBlocks;
    this.lruPrev = new Int32Array(numBlocks).fill(NONE);
    this.lruNext = new Int32Array(numBlocks).fill(NONE);
  }

  /** Free blocks an allocation can use: plain free plus evictable cached. */
  get freeBlocks(): number {
    return this.plainFreeTop + this.cachedFree;
  }
  get cachedFreeBlocks(): number {
    return this.cachedFree;
  }
  get usedBlocks(): number {
    return this.numBlocks - this.plainFreeTop - this.cachedFree;
  }

  /** Block index cached under `hash`, or -1. */
  lookup(hash: BlockHash): number {
    const b = this.cached.get(hash);
    return b === undefined ? NONE : b;
  }

  /** True when `block` is in the cached-free LRU (a hit on it consumes one free block). */
  isCachedFree(block: number): boolean {
    return this.refCount[block] === 0;
  }

  /** Takes a reference on a cached block (prefix hit), pulling it out of the LRU if it was free. */
  touch(block: number): void {
    if (this.refCount[block] === 0) this.lruRemove(block);
    this.refCount[block]! += 1;
  }

  /** Allocates one block (plain first, else evicts the LRU cached block); -1 when none is free. */
  allocate(): number {
    let b: number;
    if (this.plainFreeTop > 0) {
      this.plainFreeTop -= 1;
      b = this.plainFree[this.plainFreeTop]!;
    } else if (this.lruHead !== NONE) {
      b = this.lruHead;
      this.lruRemove(b);
      const h = this.hashOf[b]!;
      this.cached.delete(h);
      this.hashOf[b] = undefined;
      this.evicted?.push(h);
    } else return NONE;
    this.refCount[b] = 1;
    return b;
  }

  /**
   * Registers a freshly computed full block under `hash`. Returns false (block stays plain) when the hash
   * is already cached by another block — two requests computed the same prefix concurrently; like vLLM we
   * keep the first copy and emit nothing.
   */
  register(block: number, hash: BlockHash): boolean {
    if (this.cached.has(hash)) return false;
    this.cached.set(hash, block);
    this.hashOf[block] = hash;
    return true;
  }

  /** Drops one reference. An unreferenced cached block joins the LRU tail; a plain one the free stack. */
  release(block: number): void {
    const rc = this.refCount[block]! - 1;
    if (rc < 0) throw new Error(`BlockPool.release: block ${block} is already free`);
    this.refCount[block] = rc;
    if (rc > 0) return;
    if (this.hashOf[block] !== undefined) this.lruAppend(block);
    else {
      this.plainFree[this.plainFreeTop] = block;
      this.plainFreeTop += 1;
    }
  }

  /** Forgets every cached-free block (vLLM `reset_prefix_cache`); only when nothing is referenced. */
  reset(): boolean {
    if (this.usedBlocks !== 0) return false;
    while (this.lruHead !== NONE) {
      const b = this.lruHead;
      this.lruRemove(b);
      this.hashOf[b] = undefined;
      this.plainFree[this.plainFreeTop] = b;
      this.plainFreeTop += 1;
    }
    this.cached.clear();
    return true;
  }

  /** Cached-free blocks from next-evicted to last-evicted (tests and debugging; O(n)). */
  lruOrder(): BlockHash[] {
    const out: BlockHash[] = [];
    for (let b = this.lruHead; b !== NONE; b = this.lruNext[b]!) out.push(this.hashOf[b]!);
    return out;
  }

  private lruAppend(b: number): void {
    this.lruPrev[b] = this.lruTail;
    this.lruNext[b] = NONE;
    if (this.lruTail === NONE) this.lruHead = b;
    else this.lruNext[this.lruTail] = b;
    this.lruTail = b;
    this.cachedFree += 1;
  }

  private lruRemove(b: number): void {
    const p = this.lruPrev[b]!;
    const n = this.lruNext[b]!;
    if (p === NONE) this.lruHead = n;
    else this.lruNext[p] = n;
    if (n === NONE) this.lruTail = p;
    else this.lruPrev[n] = p;
    this.lruPrev[b] = NONE;
    this.lruNext[b] = NONE;
    this.cachedFree -= 1;
  }
}
