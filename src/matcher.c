/*
** matcher.c: builds the Aho-Corasick automaton that finds every piece
** ending at each position of a text in one left-to-right pass.
**
** Construction: sort the pieces, lay them out as a trie in preorder, place
** the trie into a double array in that same preorder (a node's children sit
** at base + byte, and `check` names the parent, so a transition is two
** loads; the search for a base is bounded, see placement below, so building
** is linear in the model's size), turn slot numbers into the byte offsets the
** automaton uses (internal.h), then compute failure links and output links
** breadth first. Each cell's `out` names the longest piece that is a suffix of the cell's string; each
** piece's `next_out` names the next shorter one, so the pieces ending at a
** position come out longest first.
*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct sorted_piece {
  const uint8_t *bytes;
  uint32_t length;
  int32_t index;
} sorted_piece;

static int compare_piece_bytes(const void *a, const void *b) {
  const sorted_piece *x = a, *y = b;
  uint32_t n = x->length < y->length ? x->length : y->length;
  int c = memcmp(x->bytes, y->bytes, n);
  if (c) return c;
  return (x->length > y->length) - (x->length < y->length);
}

/* The trie before placement: node 0 is the root. */
typedef struct trie {
  int32_t *first_child, *next_sibling, *last_child, *piece;
  uint8_t *label;
  size_t count;
} trie;

static void trie_free(trie *t) {
  bp_free(t->first_child);
  bp_free(t->next_sibling);
  bp_free(t->last_child);
  bp_free(t->piece);
  bp_free(t->label);
}

/* Returns BP_FORMAT with *duplicate set to the index of a piece that
** appears twice. */
static int trie_build(trie *t, const sorted_piece *sorted, size_t n, size_t max_nodes,
                      int32_t duplicate[2]) {
  t->first_child = bp_malloc(max_nodes * sizeof(int32_t));
  t->next_sibling = bp_malloc(max_nodes * sizeof(int32_t));
  t->last_child = bp_malloc(max_nodes * sizeof(int32_t));
  t->piece = bp_malloc(max_nodes * sizeof(int32_t));
  t->label = bp_malloc(max_nodes);
  if (!t->first_child || !t->next_sibling || !t->last_child || !t->piece || !t->label)
    return BP_NOMEM;
  t->count = 1;
  t->first_child[0] = t->next_sibling[0] = t->last_child[0] = -1;
  t->piece[0] = -1;
  t->label[0] = 0;
  int32_t path[BP_MAX_PIECE_BYTES + 1];
  path[0] = 0;
  const sorted_piece *previous = NULL;
  for (size_t k = 0; k < n; k++) {
    const sorted_piece *p = &sorted[k];
    uint32_t shared = 0;
    if (previous) {
      uint32_t limit = p->length < previous->length ? p->length : previous->length;
      while (shared < limit && p->bytes[shared] == previous->bytes[shared]) shared++;
    }
    /* Sorted order makes every new node the last child of its parent. */
    for (uint32_t d = shared; d < p->length; d++) {
      int32_t node = (int32_t)t->count++;
      int32_t parent = path[d];
      t->first_child[node] = t->last_child[node] = t->next_sibling[node] = -1;
      t->piece[node] = -1;
      t->label[node] = p->bytes[d];
      if (t->last_child[parent] < 0)
        t->first_child[parent] = node;
      else
        t->next_sibling[t->last_child[parent]] = node;
      t->last_child[parent] = node;
      path[d + 1] = node;
    }
    int32_t *terminal = &t->piece[path[p->length]];
    if (*terminal >= 0) {
      duplicate[0] = *terminal;
      duplicate[1] = p->index;
      return BP_FORMAT;
    }
    *terminal = p->index;
    previous = p;
  }
  return BP_OK;
}

/* Slots of the double array under construction. The free slots that may
** still take a node's first child are kept in an ascending doubly linked
** list, the candidates. A candidate that fails MAX_MISSES times leaves that
** list for the leftovers, which only nodes with one child (which fit any
** free slot) take from; only the last RECENT_SLOTS slots stay candidates
** (older ones are full enough that searching them mostly fails); and a
** search gives up after MAX_TRIES candidates and places the children past
** the highest slot in use, where every slot is free. So placing a node
** with c children costs at most MAX_TRIES * c probes (candidates looked at
** and `check`s read), the whole trie at most MAX_TRIES probes per node, and
** each slot moves between lists at most twice: linear in the model's size,
** where a plain first-fit scan over every free slot is quadratic on models
** whose holes fit no node (random bytes). Placement decides only where
** cells lie, never which pieces a text is segmented into. */
#define MAX_MISSES 8
#define MAX_TRIES 64
#define RECENT_SLOTS 65536
enum { CANDIDATES, LEFTOVERS };
typedef struct placement {
  bp_matcher_cell *cells;
  int32_t *next_free, *previous_free; /* links of either list; -1 ends it */
  uint8_t *misses;                    /* MAX_MISSES: a leftover */
  size_t capacity;
  int32_t first_free[2], last_free[2]; /* candidates, leftovers */
  int32_t highest_used;
  uint64_t probes;
} placement;

static void placement_free(placement *pl) {
  bp_free(pl->cells);
  bp_free(pl->next_free);
  bp_free(pl->previous_free);
  bp_free(pl->misses);
}

static void placement_append(placement *pl, int list, int32_t slot) {
  pl->next_free[slot] = -1;
  pl->previous_free[slot] = pl->last_free[list];
  if (pl->last_free[list] >= 0)
    pl->next_free[pl->last_free[list]] = slot;
  else
    pl->first_free[list] = slot;
  pl->last_free[list] = slot;
}

static void placement_unlink(placement *pl, int list, int32_t slot) {
  int32_t next = pl->next_free[slot], previous = pl->previous_free[slot];
  if (previous >= 0)
    pl->next_free[previous] = next;
  else
    pl->first_free[list] = next;
  if (next >= 0)
    pl->previous_free[next] = previous;
  else
    pl->last_free[list] = previous;
}

static int placement_grow(placement *pl, size_t want) {
  if (want <= pl->capacity) return BP_OK;
  size_t capacity = pl->capacity ? pl->capacity : 1024;
  while (capacity < want) capacity *= 2;
  /* States are byte offsets of cells in an int32_t (internal.h). */
  if (capacity > INT32_MAX / sizeof(bp_matcher_cell)) return BP_TOOBIG;
  bp_matcher_cell *cells = bp_realloc(pl->cells, capacity * sizeof *cells);
  if (!cells) return BP_NOMEM;
  pl->cells = cells;
  int32_t *next = bp_realloc(pl->next_free, capacity * sizeof *next);
  if (!next) return BP_NOMEM;
  pl->next_free = next;
  int32_t *previous = bp_realloc(pl->previous_free, capacity * sizeof *previous);
  if (!previous) return BP_NOMEM;
  pl->previous_free = previous;
  uint8_t *misses = bp_realloc(pl->misses, capacity);
  if (!misses) return BP_NOMEM;
  pl->misses = misses;
  /* The new slots are higher than any candidate, so the list stays sorted. */
  for (size_t i = pl->capacity; i < capacity; i++) {
    cells[i] = (bp_matcher_cell){0, -1, 0, -1};
    misses[i] = 0;
    placement_append(pl, CANDIDATES, (int32_t)i);
  }
  pl->capacity = capacity;
  return BP_OK;
}

static void placement_take(placement *pl, int32_t slot, int32_t parent) {
  placement_unlink(pl, pl->misses[slot] < MAX_MISSES ? CANDIDATES : LEFTOVERS, slot);
  pl->cells[slot].check = parent;
  if (slot > pl->highest_used) pl->highest_used = slot;
}

/* Finds a base where every child label lands on a free slot: for one child
** a leftover, else the first candidate that fits among the next MAX_TRIES,
** or else just past the highest slot in use. The capacity must reach
** highest_used + 257. */
static int32_t placement_find_base(placement *pl, const uint8_t *labels, int count) {
  if (count == 1 && pl->first_free[LEFTOVERS] - labels[0] >= 1) {
    pl->probes++;
    return pl->first_free[LEFTOVERS] - labels[0];
  }
  /* Only the last RECENT_SLOTS slots stay candidates: older ones are full
  ** enough that searching among them mostly fails. */
  int32_t f;
  while ((f = pl->first_free[CANDIDATES]) >= 0 && f < pl->highest_used - RECENT_SLOTS) {
    placement_unlink(pl, CANDIDATES, f);
    pl->misses[f] = MAX_MISSES;
    placement_append(pl, LEFTOVERS, f);
  }
  for (int tries = 0; f >= 0 && f <= pl->highest_used && tries < MAX_TRIES; tries++) {
    int32_t next = pl->next_free[f];
    int32_t base = f - labels[0];
    pl->probes++;
    if (base >= 1) {
      int k = 1;
      while (k < count && (pl->probes++, pl->cells[base + labels[k]].check == -1)) k++;
      if (k == count) return base;
    }
    if (++pl->misses[f] == MAX_MISSES) {
      placement_unlink(pl, CANDIDATES, f);
      placement_append(pl, LEFTOVERS, f);
    }
    f = next;
  }
  /* Every slot above the highest in use is free. */
  int32_t base = pl->highest_used + 1 - labels[0];
  return base < 1 ? 1 : base;
}

/* Nodes placed between two interrupt checks. */
#define NODES_PER_CHECK (1 << 16)

/* The trie of the pieces, built from them in byte order. BP_FORMAT names
** two pieces with the same bytes. */
static int build_sorted_trie(trie *t, const uint8_t *bytes, const uint32_t *offsets, size_t n,
                             const bp_interrupt *interrupt, bp_error *err) {
  sorted_piece *sorted = bp_malloc(n * sizeof *sorted);
  if (!sorted) return BP_NOMEM;
  size_t max_nodes = 1;
  for (size_t i = 0; i < n; i++) {
    sorted[i] = (sorted_piece){bytes + offsets[i], offsets[i + 1] - offsets[i], (int32_t)i};
    max_nodes += sorted[i].length;
  }
  qsort(sorted, n, sizeof *sorted, compare_piece_bytes);
  int rc = BP_INTERRUPT;
  int32_t duplicate[2];
  if (!(interrupt && interrupt->check(interrupt->context)) &&
      (rc = trie_build(t, sorted, n, max_nodes, duplicate)) == BP_FORMAT)
    bp_fail(err, rc, "duplicate piece: ids %d and %d have the same bytes",
            (int)duplicate[0] + BP_FIRST_PIECE_ID, (int)duplicate[1] + BP_FIRST_PIECE_ID);
  bp_free(sorted);
  return rc;
}

/* All the trie's nodes in breadth-first order, the root first: the order
** the failure links are computed in (each depends on shallower nodes). */
static void trie_breadth_first(const trie *t, int32_t *queue) {
  size_t head = 0, tail = 0;
  queue[tail++] = 0;
  while (head < tail)
    for (int32_t c = t->first_child[queue[head++]]; c >= 0; c = t->next_sibling[c])
      queue[tail++] = c;
}

/* Places the trie's nodes in the double array, each node's children at its
** base plus their labels, node by node in preorder (the trie's numbering):
** slot_of[node] is where a node went. Preorder, not breadth first, because
** of how a text walks the automaton: a match that grows steps from a node
** to one of its children, then to a grandchild. In preorder the nodes of a
** subtree are placed one after another, so the cells along a path lie
** close together; breadth first spreads the levels of a path over the
** whole array. On mix_small (cache simulation, bytepiece.eu.plus.80k and
** bytepiece_80k) that took the first-level misses from 1.95 and 2.17 a
** byte to 1.78 and 2.01, and those of a 2 MB second level from 0.21 and
** 0.13 to 0.18 and 0.11, for 0.1% more cells. */
static int place_in_preorder(const trie *t, placement *pl, int32_t *slot_of,
                             const bp_interrupt *interrupt) {
  int rc = placement_grow(pl, 1024);
  if (rc != BP_OK) return rc;
  placement_take(pl, 0, -2); /* the root; -2 is nobody's slot */
  slot_of[0] = 0;
  /* A node's parent comes before it in preorder, so its slot is known. */
  for (size_t node = 0; node < t->count; node++) {
    if (node % NODES_PER_CHECK == 0 && interrupt && interrupt->check(interrupt->context))
      return BP_INTERRUPT;
    uint8_t labels[256];
    int count = 0;
    for (int32_t c = t->first_child[node]; c >= 0; c = t->next_sibling[c])
      labels[count++] = t->label[c];
    if (count == 0) {
      pl->cells[slot_of[node]].base = 0; /* base + byte lands on the root or its children */
      continue;
    }
    if ((rc = placement_grow(pl, (size_t)pl->highest_used + 513)) != BP_OK) return rc;
    int32_t base = placement_find_base(pl, labels, count);
    pl->cells[slot_of[node]].base = base;
    for (int32_t c = t->first_child[node]; c >= 0; c = t->next_sibling[c]) {
      slot_of[c] = base + t->label[c];
      placement_take(pl, slot_of[c], slot_of[node]);
    }
  }
  return BP_OK;
}

/* Placement works in slots; the automaton in byte offsets (internal.h).
** Free slots keep a negative check. */
static void slots_to_offsets(bp_matcher_cell *cells, size_t cell_count) {
  const int32_t size = (int32_t)sizeof *cells;
  for (size_t i = 0; i < cell_count; i++) {
    cells[i].base *= size;
    cells[i].check *= size;
  }
}

/* Failure and output links, breadth first: both point to shallower nodes.
** The failure links are offsets, found by stepping the automaton. */
static void link_failures(bp_matcher *mt, const trie *t, bp_matcher_cell *cells,
                          const int32_t *queue, const int32_t *slot_of) {
  for (size_t q = 0; q < t->count; q++) {
    int32_t node = queue[q];
    int32_t slot = slot_of[node];
    for (int32_t c = t->first_child[node]; c >= 0; c = t->next_sibling[c]) {
      int32_t child = slot_of[c];
      int32_t fail = node == 0 ? 0 : bp_matcher_step(cells, cells[slot].fail, t->label[c]);
      cells[child].fail = fail;
      int32_t piece = t->piece[c];
      if (piece >= 0) {
        mt->pieces[piece].next_out = bp_matcher_at(cells, fail)->out;
        cells[child].out = piece;
      } else {
        cells[child].out = bp_matcher_at(cells, fail)->out;
      }
    }
  }
  cells[0].fail = 0;
  cells[0].out = -1;
}

int bp_matcher_build(bp_matcher *mt, const uint8_t *bytes, const uint32_t *offsets, size_t n,
                     const bp_interrupt *interrupt, bp_error *err) {
  trie t = {0};
  placement pl = {0};
  pl.first_free[CANDIDATES] = pl.last_free[CANDIDATES] = -1;
  pl.first_free[LEFTOVERS] = pl.last_free[LEFTOVERS] = -1;
  int32_t *queue = NULL, *slot_of = NULL;
  int rc = build_sorted_trie(&t, bytes, offsets, n, interrupt, err);
  if (rc == BP_OK) {
    queue = bp_malloc(t.count * sizeof *queue);
    slot_of = bp_malloc(t.count * sizeof *slot_of);
    rc = queue && slot_of ? place_in_preorder(&t, &pl, slot_of, interrupt) : BP_NOMEM;
    if (rc == BP_OK) trie_breadth_first(&t, queue);
  }
  /* Any base + byte must stay inside the array: bases of nodes with
  ** children are at most highest_used, of leaves 0. Nothing past that is
  ** ever reached, so the array ends there. */
  size_t cell_count = (size_t)pl.highest_used + 257;
  if (rc == BP_OK) rc = placement_grow(&pl, cell_count);
  if (rc == BP_OK) {
    bp_matcher_cell *trimmed = bp_realloc(pl.cells, cell_count * sizeof *trimmed);
    if (trimmed) pl.cells = trimmed; /* else keep the longer array */
    mt->trie_nodes = t.count;
    mt->placement_probes = pl.probes;
    slots_to_offsets(pl.cells, cell_count);
    link_failures(mt, &t, pl.cells, queue, slot_of);
    mt->cells = pl.cells;
    mt->cell_count = cell_count;
    pl.cells = NULL;
  }
  if (rc == BP_NOMEM)
    bp_fail_nomem(err);
  else if (rc == BP_INTERRUPT)
    bp_fail(err, rc, "interrupted");
  else if (rc == BP_TOOBIG)
    bp_fail(err, rc, "model too large for the matcher");
  bp_free(queue);
  bp_free(slot_of);
  trie_free(&t);
  placement_free(&pl);
  return rc;
}

void bp_matcher_free(bp_matcher *mt) {
  bp_free(mt->cells);
  bp_free(mt->pieces);
  memset(mt, 0, sizeof *mt);
}
