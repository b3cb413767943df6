"""Prefix caches: KV blocks of shared prompt text kept after their request leaves, reused by later ones.

Two engines' designs, one contract (the :class:`~genz.serving.schedulers.ContinuousScheduler` calls it):

* :class:`BlockPrefixCache`: vLLM's automatic prefix caching. A full KV block is identified by a hash
  of its tokens and of every token before it; a new request reuses its longest run of leading
  blocks found in the cache. Blocks nobody runs on stay cached and are evicted least recently freed
  first (a finished request frees its blocks tail first, so its prompt's opening blocks outlive its
  end), when a new block is needed and no block is free otherwise (vLLM V1 ``KVCacheManager``).
* :class:`RadixPrefixCache`: SGLang's radix cache. A tree of the token sequences seen so far; a
  request reuses its longest matching prefix at token granularity (SGLang's default page size 1),
  locks the path while it runs, inserts its own sequence when its prompt is computed and when it
  finishes; unlocked leaves are evicted least recently used first (SGLang ``RadixCache``).

Requests describe their text as segments (:func:`workloads.requests.segments`: a system prompt, a
conversation's earlier turns, their own text, their output), so a block's identity is the chain of
segments up to its last token and its position; the tree's edges are segments. Assumption: two
different segments share no tokens (a system prompt and a user's text never begin alike).

Accounting, in blocks (tokens for the radix cache): the scheduler's ``free`` counts the blocks no
running sequence holds, cached ones included (``evictable``); a sequence's blocks are either
``shared`` (owned by the cache: hits and the blocks it handed to the cache) or its own, freed when it
leaves. At least one prompt token is always computed (the last one gives the logits), as in both
engines.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterator

from genz.serving.entities import Seq
from workloads.requests import segments

__all__ = ["BlockPrefixCache", "RadixPrefixCache"]


def _block_keys(segs: list[tuple[int, int]], block_size: int, lo: int = 0) -> Iterator[tuple[int, int]]:
    """Keys of blocks ``lo, lo + 1, ...`` of a segment list: (hash of the segment chain up to the
    block's last token, the block's end position). Deterministic (hashes of int tuples)."""
    chain = 0
    seg_end = 0
    it = iter(segs)
    i = lo
    while True:
        end = (i + 1) * block_size
        while seg_end < end:
            nxt = next(it, None)
            if nxt is None:
                return
            chain = hash((chain, nxt[0]))
            seg_end += nxt[1]
        yield chain, end
        i += 1


class BlockPrefixCache:
    """vLLM-style automatic prefix caching (see the module docstring); counts in blocks."""

    def __init__(self, block_size: int):
        self.block_size = block_size
        self.ref: dict[tuple[int, int], int] = {}          # cached blocks in use -> sequences holding them
        self.lru: OrderedDict[tuple[int, int], None] = OrderedDict()  # cached, unused, least recently freed first
        self.evictions = 0

    @property
    def evictable(self) -> int:
        """Cached blocks no running sequence holds (free, but reusable until evicted)."""
        return len(self.lru)

    def match(self, seq: Seq, target: int) -> tuple[int, int, list]:
        """(blocks hit, of them evictable ones, handle) for ``seq`` needing ``target`` tokens; no side effect."""
        limit = (target - 1) // self.block_size
        ref, lru = self.ref, self.lru
        hit = taken = 0
        keys: list = []
        if limit <= 0:
            return 0, 0, keys
        for key in _block_keys(segments(seq.req), self.block_size):
            if key in ref:
                pass
            elif key in lru:
                taken += 1
            else:
                break
            keys.append(key)
            hit += 1
            if hit == limit:
                break
        return hit, taken, keys

    def acquire(self, seq: Seq, hit: int, handle: list) -> None:
        """Hold the blocks ``match`` found."""
        ref, lru = self.ref, self.lru
        for k in handle:
            if k in lru:
                del lru[k]
                ref[k] = 1
            else:
                ref[k] += 1
        seq.ckeys = list(handle)
        seq.shared = seq.reg = hit

    def offer(self, seq: Seq, computed: int) -> int:
        """Cache the full blocks of ``seq``'s first ``computed`` tokens not offered yet; returns the
        blocks this frees (none: a block already cached under the same key stays the sequence's own)."""
        upto = computed // self.block_size
        if upto <= seq.reg:
            return 0
        ref, lru = self.ref, self.lru
        keys = _block_keys(segments(seq.req), self.block_size, seq.reg)
        for _ in range(upto - seq.reg):
            k = next(keys)
            if k in ref or k in lru:
                continue
            ref[k] = 1
            seq.ckeys.append(k)
            seq.shared += 1
        seq.reg = upto
        return 0

    def release(self, seq: Seq, held: int) -> int:
        """``seq`` leaves holding ``held`` blocks: returns how many become free (its own blocks, and
        cached ones nobody else holds, which enter the LRU tail first)."""
        ref, lru = self.ref, self.lru
        freed = held - seq.shared
        for k in reversed(seq.ckeys):
            c = ref[k] - 1
            if c:
                ref[k] = c
            else:
                del ref[k]
                lru[k] = None
                freed += 1
        seq.ckeys = []
        seq.shared = seq.reg = 0
        return freed

    def evict(self, n: int) -> None:
        """Drop the ``n`` least recently freed cached blocks (their memory is reallocated)."""
        lru = self.lru
        for _ in range(n):
            lru.popitem(last=False)
        self.evictions += n


class _Node:
    __slots__ = ("seg", "tokens", "children", "parent", "lock", "stamp")

    def __init__(self, seg: int | None, tokens: int, parent: _Node | None):
        self.seg = seg
        self.tokens = tokens
        self.children: dict[int, _Node] = {}
        self.parent = parent
        self.lock = 0
        self.stamp = 0


class RadixPrefixCache:
    """SGLang-style radix cache over segments (see the module docstring); counts in tokens, so the
    scheduler's block size must be 1. A node holds the first ``tokens`` tokens of its segment (a
    finished request's output is cached one token short: its last token's KV is never computed)."""

    block_size = 1

    def __init__(self) -> None:
        self.root = _Node(None, 0, None)
        self.root.lock = 1
        self.evictable = 0
        self.evictions = 0
        self._heap: list[tuple[int, int, _Node]] = []
        self._clock = 0

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def match(self, seq: Seq, target: int) -> tuple[int, int, list]:
        """(tokens hit, of them evictable, the matched path) for ``seq`` needing ``target`` tokens:
        whole nodes only, fewer than ``target`` tokens; no side effect."""
        node, hit, taken, path = self.root, 0, 0, []
        for sid, n in segments(seq.req):
            child = node.children.get(sid)
            if child is None or hit + child.tokens >= target:
                break
            path.append(child)
            hit += child.tokens
            if not child.lock:
                taken += child.tokens
            if child.tokens < n:
                break
            node = child
        return hit, taken, path

    def acquire(self, seq: Seq, hit: int, handle: list) -> None:
        """Lock the matched path (its nodes are no longer evictable)."""
        t = self._tick()
        for nd in handle:
            if not nd.lock:
                self.evictable -= nd.tokens
            nd.lock += 1
            nd.stamp = t
        seq.ckeys = list(handle)
        seq.shared = seq.reg = hit

    def _lock(self, nd: _Node) -> int:
        """Lock ``nd`` for a sequence; returns the tokens that leave the evictable pool."""
        out = 0
        if not nd.lock:
            self.evictable -= nd.tokens
            out = nd.tokens
        nd.lock += 1
        nd.stamp = self._tick()
        return out

    def offer(self, seq: Seq, computed: int) -> int:
        """Insert ``seq``'s segments computed so far past those it holds (whole segments; a final
        partial one too, since the sequence is about to leave or is decoding); returns the tokens
        freed (the sequence's copies of text the tree already had, less cached text it now locks)."""
        pos = seq.reg
        if computed <= pos:
            return 0
        node = seq.ckeys[-1] if seq.ckeys else self.root
        freed = 0
        start = 0
        for sid, n in segments(seq.req):
            end = start + n
            if end <= pos:
                start = end
                continue
            have = min(computed, end) - start   # tokens of this segment the sequence has computed
            if have <= 0:
                break
            if start < pos:                     # continuing the partial node it holds
                if node.tokens < have:          # extend it with the sequence's own tokens (a copy of
                    seq.shared += have - node.tokens  # what another extended meanwhile stays its own)
                    node.tokens = have
                pos = start + have
                if have < n:
                    break
                start = end
                continue
            child = node.children.get(sid)
            if child is None:
                child = _Node(sid, have, node)
                node.children[sid] = child
                child.lock = 1
                child.stamp = self._tick()
                seq.shared += have
            else:                               # inserted meanwhile (or cached one token short)
                freed -= self._lock(child)
                freed += min(child.tokens, have)  # its own copy of what the tree holds
                if child.tokens < have:
                    child.tokens = have         # the rest it hands over
                seq.shared += have
            seq.ckeys.append(child)
            node = child
            pos = start + have
            if have < n:
                break
            start = end
        seq.reg = pos
        return freed

    def release(self, seq: Seq, held: int) -> int:
        """``seq`` leaves holding ``held`` tokens: returns how many become free (its own, and the
        cached ones it unlocks that nobody else holds)."""
        freed = held - seq.shared
        t = self._tick()
        for nd in reversed(seq.ckeys):
            nd.lock -= 1
            if not nd.lock:
                self.evictable += nd.tokens
                freed += nd.tokens
                nd.stamp = t
                if not nd.children:
                    heapq.heappush(self._heap, (t, id(nd), nd))
        seq.ckeys = []
        seq.shared = seq.reg = 0
        return freed

    def evict(self, n: int) -> None:
        """Evict unlocked leaves, least recently used first, until ``n`` tokens are gone."""
        heap = self._heap
        gone = 0
        while gone < n and heap:
            stamp, _, nd = heapq.heappop(heap)
            if nd.lock or nd.children or nd.stamp != stamp or nd.parent is None:
                continue
            parent = nd.parent
            del parent.children[nd.seg]
            nd.parent = None
            self.evictable -= nd.tokens
            gone += nd.tokens
            if parent is not self.root and not parent.lock and not parent.children:
                heapq.heappush(heap, (parent.stamp, id(parent), parent))
        self.evictions += gone
