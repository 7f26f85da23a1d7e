/* The sensitive-word search over the encoded stream, cheaper in memory traffic than the automaton.
 *
 * Searcher(keys, automaton).find_matches_as_indexes(buffer) returns what
 * ahocorasick_rs.BytesAhoCorasick(keys, matchkind=MATCHKIND_LEFTMOST_LONGEST) returns for the same
 * buffer: [(key index, start, end), ...], leftmost-longest, not overlapping (the first key of equal
 * ones wins).
 *
 * Why: inside a callback the automaton's search cost three to six times what it costs in a tight
 * loop (benchmarks/RESULTS.md, issue 16, steps 10 and 12). Its contiguous NFA is several MB for a
 * 20,000-word list and every byte of a message steps through it, so most of those steps miss the
 * caches the rest of the request has filled. Here most positions of a message are ruled out by small
 * filters of how keys begin, and only the few positions left look for the longest key there. Which
 * key is found where is exactly the automaton's: leftmost-longest is "at the first position where
 * some key starts, the longest key starting there", which is what the scan below does.
 *
 * With pinyin on, most keys are Latin spellings, and in English text nearly every letter begins one
 * (86 % of the letters of the benchmark's messages begin a pinyin key's first two chars): a walk
 * from the trie's root took 5 or 6 steps there before it failed. So a key's first JUMP bytes are
 * looked up at once: a Bloom filter of them (4 % of Latin positions and 0.2 % of the others pass it
 * for a 20,000-word list with every option), then a hash table that gives the trie node JUMP bytes
 * down and the longest shorter key on the way there. Keys shorter than JUMP bytes have a filter of
 * their own and a walk from the root. The trie is laid out depth first, each node's children right
 * after it in one record, so a walk down a word mostly reads on in memory.
 *
 * A text made to defeat the filters (a long run of a key's prefix) would make the walks long: the
 * walk's steps are counted, and past WALK_BUDGET steps a byte (plus a constant) the search gives up
 * and asks the automaton, whose time is linear whatever the text.
 *
 * tests/test_words_search.py compares both on the word tables, the corpora, generated and hostile
 * streams.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WALK_BUDGET 8          /* trie steps per byte of the buffer before the automaton takes over */
#define WALK_BUDGET_BASE 256
#define DENSE_CHILDREN 16      /* a node with more children gets a 256-entry table */
#define DENSE 0x10000u         /* in a record's second word: it has that table */
#define JUMP 8                 /* bytes of a key's beginning looked up at once (width 2: 4 chars) */
#define SHORTER_SHIFT 28       /* a jump's shorter key: index | length << 28 */
#define BLOOM_BITS_PER_ITEM 10 /* ~2 % false positives with 3 bits set in one 64-bit word */

/* The trie is an array of uint32 words, one record a node, depth first (a node's first child
 * follows it):
 *   [0] the index of the key that ends here, or -1
 *   [1] the number of children, | DENSE when they are in a 256-entry table
 *   then the 256 entries (DENSE), or the children's labels, sorted, 4 a word, and their offsets.
 * A node is its record's offset; 0, the root's, stands for "no child". */

/* The trie node JUMP bytes below the root for one key beginning. */
typedef struct {
    uint64_t prefix;  /* the JUMP bytes, as load64 reads them */
    uint32_t node;    /* 0: an empty slot */
    int32_t shorter;  /* the longest key that is a proper prefix of them: index | length << 28; -1 */
} Jump;

/* A Bloom filter that sets 3 bits in one 64-bit word an item: one memory read a look-up and ~10
 * bits an item. Which word may come from another hash than which bits, so the words of one
 * beginning can share a word (the short keys of 2 and 3 chars). */
typedef struct {
    uint64_t *words;
    int shift;        /* 64 - log2(number of words) */
} Bloom;

typedef struct {
    PyObject_HEAD
    uint32_t *trie;
    uint8_t first2[8192];   /* (b0, b1) begins a key of any length (a 1-byte key: every b1) */
    uint8_t short2[8192];   /* (b0, b1) begins a key of at most 3 bytes (a 1-byte key: every b1) */
    uint8_t one[32];        /* b0 is a whole key */
    Bloom jump_bloom;       /* the first JUMP bytes of the keys of JUMP bytes or more */
    Bloom short_bloom;      /* whole keys of 4 to JUMP - 1 bytes: a word per first 4 bytes */
    uint32_t short_lengths; /* bit n: some key is n bytes long (4 <= n < JUMP) */
    Jump *jumps;            /* open addressing, jump_mask + 1 slots */
    uint64_t jump_mask;
    Py_ssize_t n_words, n_nodes, n_dense, n_keys, n_jumps;
    PyObject *automaton;    /* for texts that would make the walks long */
} Searcher;

static PyObject *search_name;

#define BIT_SET(map, i) ((map)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))
#define BIT_GET(map, i) ((map)[(i) >> 3] & (1u << ((i) & 7)))

static inline uint64_t load64(const uint8_t *s) {
    uint64_t v;
    memcpy(&v, s, 8);
    return v;
}

/* Up to 8 bytes as load64 reads them (little-endian: the first byte is the lowest). */
static uint64_t key_bytes(const uint8_t *s, Py_ssize_t n) {
    uint64_t v = 0;
    memcpy(&v, s, (size_t)n);
    return v;
}

static inline uint64_t first_bytes(uint64_t v, int n) {
    return n >= 8 ? v : v & ((UINT64_C(1) << (8 * n)) - 1);
}

static inline uint64_t mix(uint64_t v) {
    v ^= v >> 29;
    v *= UINT64_C(0x9E3779B97F4A7C15);
    return v ^ (v >> 32);
}

static inline uint64_t bloom_bits(uint64_t h) {
    return UINT64_C(1) << (h & 63) | UINT64_C(1) << (h >> 6 & 63) | UINT64_C(1) << (h >> 12 & 63);
}

static inline uint64_t *bloom_word(const Bloom *bloom, uint64_t h) { return bloom->words + (h >> bloom->shift); }

static int bloom_init(Bloom *bloom, Py_ssize_t items) {
    uint64_t words = 16;
    int bits = 4;
    while (words * 64 < (uint64_t)items * BLOOM_BITS_PER_ITEM) { words <<= 1; bits++; }
    bloom->words = PyMem_Calloc((size_t)words, sizeof(uint64_t));
    bloom->shift = 64 - bits;
    if (!bloom->words) { PyErr_NoMemory(); return -1; }
    return 0;
}

/* A short key's hash for its bits: its bytes and its length. */
static inline uint64_t short_hash(uint64_t bytes, int n) { return mix(bytes ^ ((uint64_t)n << 61)); }

/* The root always has the table: the walk starts there with no look at the count. */
static inline int dense_record(int32_t node, uint32_t count) { return node == 0 || count > DENSE_CHILDREN; }

static inline size_t record_words(int32_t node, uint32_t count) {
    return dense_record(node, count) ? 2 + 256 : 2 + (count + 3) / 4 + count;
}

static inline uint32_t child_of(const uint32_t *trie, uint32_t node, uint8_t byte) {
    const uint32_t *record = trie + node;
    uint32_t count = record[1];
    if (count & DENSE) return record[2 + byte];
    const uint8_t *labels = (const uint8_t *)(record + 2);
    for (uint32_t k = 0; k < count; k++) {
        if (labels[k] >= byte) return labels[k] == byte ? record[2 + (count + 3) / 4 + k] : 0;
    }
    return 0;
}

/* The k-th child of a node and its label, in label order; 0 past the last. */
static uint32_t nth_child(const uint32_t *trie, uint32_t node, uint32_t *k, uint8_t *label) {
    const uint32_t *record = trie + node;
    uint32_t count = record[1];
    if (count & DENSE) {
        for (; *k < 256; (*k)++) {
            if (record[2 + *k]) { *label = (uint8_t)*k; return record[2 + (*k)++]; }
        }
        return 0;
    }
    if (*k >= count) return 0;
    *label = ((const uint8_t *)(record + 2))[*k];
    return record[2 + (count + 3) / 4 + (*k)++];
}

static void add_jump(Searcher *self, uint64_t prefix, uint32_t node, int32_t shorter) {
    uint64_t h = mix(prefix), slot = h & self->jump_mask;
    while (self->jumps[slot].node) slot = (slot + 1) & self->jump_mask;
    self->jumps[slot].prefix = prefix;
    self->jumps[slot].node = node;
    self->jumps[slot].shorter = shorter;
    *bloom_word(&self->jump_bloom, h) |= bloom_bits(h);
}

/* Every node JUMP bytes down (n_jumps of them, counted while the trie was filled), found depth
 * first, into the hash table. */
static int build_jumps(Searcher *self) {
    struct { uint32_t node, k; } stack[JUMP + 1];
    uint8_t path[JUMP];
    int32_t best[JUMP + 1];  /* the longest key on the path down to each depth, as Jump.shorter */
    uint64_t slots = 16;
    while (slots < (uint64_t)self->n_jumps * 2) slots <<= 1;
    self->jumps = PyMem_Calloc((size_t)slots, sizeof(Jump));
    if (!self->jumps) { PyErr_NoMemory(); return -1; }
    self->jump_mask = slots - 1;
    if (bloom_init(&self->jump_bloom, self->n_jumps) < 0) return -1;
    int depth = 0;
    stack[0].node = 0; stack[0].k = 0;
    best[0] = -1;
    while (depth >= 0) {
        if (depth == JUMP) {
            add_jump(self, load64(path), stack[depth].node, best[depth - 1]);
            depth--;
            continue;
        }
        uint32_t node = stack[depth].node;
        if (stack[depth].k == 0 && depth > 0) {
            int32_t key = (int32_t)self->trie[node];
            best[depth] = key >= 0 ? (int32_t)((uint32_t)key | (uint32_t)depth << SHORTER_SHIFT) : best[depth - 1];
        }
        uint8_t label;
        uint32_t child = nth_child(self->trie, node, &stack[depth].k, &label);
        if (!child) { depth--; continue; }
        path[depth] = label;
        depth++;
        stack[depth].node = child; stack[depth].k = 0;
    }
    return 0;
}

/* Building: a trie with linked children (kept in label order) first, then the records. The
 * engine hands the keys over in byte order (rules/text/wordbuild.py sorts them for the automaton):
 * then each key shares its first bytes with the one before and adds its own as the last children,
 * with no look along the siblings (a third of the build for 384,000 keys). */
typedef struct { int32_t child, sibling, last, key; uint16_t count; uint8_t label; } BuildNode;

/* Whether each key is at least the one before it, byte by byte (a shorter prefix first). */
static int in_byte_order(PyObject *keys, Py_ssize_t n_keys) {
    for (Py_ssize_t k = 1; k < n_keys; k++) {
        PyObject *a = PySequence_Fast_GET_ITEM(keys, k - 1), *b = PySequence_Fast_GET_ITEM(keys, k);
        Py_ssize_t la = PyBytes_GET_SIZE(a), lb = PyBytes_GET_SIZE(b);
        int order = memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)(la < lb ? la : lb));
        if (order > 0 || (order == 0 && la > lb)) return 0;
    }
    return 1;
}

static inline int32_t new_child(BuildNode *tmp, int32_t *used, int32_t parent, int32_t after, uint8_t label) {
    int32_t c = (*used)++;
    tmp[c].child = tmp[c].last = -1; tmp[c].key = -1; tmp[c].label = label;
    if (after < 0) {  /* the first child */
        tmp[c].sibling = tmp[parent].child;
        tmp[parent].child = c;
    } else {
        tmp[c].sibling = tmp[after].sibling;
        tmp[after].sibling = c;
    }
    if (tmp[c].sibling < 0) tmp[parent].last = c;
    tmp[parent].count++;
    return c;
}

static int build(Searcher *self, PyObject *keys) {
    Py_ssize_t n_keys = PySequence_Fast_GET_SIZE(keys), total = 1, shorts = 0;
    for (Py_ssize_t k = 0; k < n_keys; k++) {
        PyObject *key = PySequence_Fast_GET_ITEM(keys, k);
        if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) == 0) {
            PyErr_SetString(PyExc_ValueError, "keys must be non-empty bytes");
            return -1;
        }
        total += PyBytes_GET_SIZE(key);
        shorts += PyBytes_GET_SIZE(key) >= 4 && PyBytes_GET_SIZE(key) < JUMP;
    }
    if (total >= INT32_MAX || n_keys >= (1 << SHORTER_SHIFT)) {
        PyErr_SetString(PyExc_ValueError, "too many key bytes");
        return -1;
    }
    BuildNode *tmp = PyMem_Calloc((size_t)total, sizeof(BuildNode));
    uint32_t *offset = PyMem_Malloc(sizeof(uint32_t) * (size_t)total);
    int32_t *stack = PyMem_Malloc(sizeof(int32_t) * (size_t)total);
    int failed = -1;
    if (!tmp || !offset || !stack) { PyErr_NoMemory(); goto done; }
    if (bloom_init(&self->short_bloom, shorts) < 0) goto done;
    int32_t used = 1;
    tmp[0].child = tmp[0].sibling = tmp[0].last = tmp[0].key = -1;
    int sorted = in_byte_order(keys, n_keys);
    int32_t *path = stack;  /* sorted: the nodes of the key before, by depth (the stack is free yet) */
    const uint8_t *before = NULL;
    Py_ssize_t before_len = 0;
    path[0] = 0;
    for (Py_ssize_t k = 0; k < n_keys; k++) {
        PyObject *key = PySequence_Fast_GET_ITEM(keys, k);
        const uint8_t *s = (const uint8_t *)PyBytes_AS_STRING(key);
        Py_ssize_t len = PyBytes_GET_SIZE(key), j = 0;
        int32_t node = 0;
        if (sorted) {  /* the bytes it shares with the key before lead to nodes made already */
            while (j < len && j < before_len && s[j] == before[j]) j++;
            node = path[j];
            for (; j < len; j++) {
                node = path[j + 1] = new_child(tmp, &used, node, tmp[node].last, s[j]);
                self->n_jumps += j + 1 == JUMP;
            }
            before = s; before_len = len;
        }
        for (; j < len; j++) {
            int32_t after = -1, c = tmp[node].child;  /* the child in label order, or where it goes */
            while (c >= 0 && tmp[c].label < s[j]) { after = c; c = tmp[c].sibling; }
            if (c < 0 || tmp[c].label != s[j]) {
                c = new_child(tmp, &used, node, after, s[j]);
                self->n_jumps += j + 1 == JUMP;
            }
            node = c;
        }
        if (tmp[node].key < 0) tmp[node].key = (int32_t)k;  /* the first of equal keys */
        if (len == 1) {
            BIT_SET(self->one, s[0]);
            for (int b = 0; b < 256; b++) { BIT_SET(self->short2, s[0] << 8 | b); BIT_SET(self->first2, s[0] << 8 | b); }
        } else {
            BIT_SET(self->first2, s[0] << 8 | s[1]);
            if (len <= 3) BIT_SET(self->short2, s[0] << 8 | s[1]);
        }
        if (len >= 4 && len < JUMP) {  /* keys of JUMP bytes or more: build_jumps */
            self->short_lengths |= 1u << len;
            *bloom_word(&self->short_bloom, mix(key_bytes(s, 4))) |= bloom_bits(short_hash(key_bytes(s, len), (int)len));
        }
    }
    /* Depth first: pop a node, give it the next offset, push its children last label first. */
    size_t words = 0;
    Py_ssize_t top = 0, dense = 0;
    stack[top++] = 0;
    while (top > 0) {
        int32_t node = stack[--top];
        offset[node] = (uint32_t)words;
        words += record_words(node, tmp[node].count);
        dense += dense_record(node, tmp[node].count);
        int32_t first = top;
        for (int32_t c = tmp[node].child; c >= 0; c = tmp[c].sibling) stack[top++] = c;
        for (int32_t a = first, b = top - 1; a < b; a++, b--) { int32_t t = stack[a]; stack[a] = stack[b]; stack[b] = t; }
    }
    if (words >= UINT32_MAX) {  /* offsets are uint32 */
        PyErr_SetString(PyExc_ValueError, "too many key bytes");
        goto done;
    }
    self->trie = PyMem_Calloc(words, sizeof(uint32_t));
    if (!self->trie) { PyErr_NoMemory(); goto done; }
    for (int32_t node = 0; node < used; node++) {
        uint32_t *record = self->trie + offset[node], count = tmp[node].count;
        record[0] = (uint32_t)tmp[node].key;
        if (dense_record(node, count)) {
            record[1] = count | DENSE;
            for (int32_t c = tmp[node].child; c >= 0; c = tmp[c].sibling) record[2 + tmp[c].label] = offset[c];
            continue;
        }
        record[1] = count;
        uint8_t *labels = (uint8_t *)(record + 2);
        uint32_t *children = record + 2 + (count + 3) / 4, k = 0;
        for (int32_t c = tmp[node].child; c >= 0; c = tmp[c].sibling, k++) {
            labels[k] = tmp[c].label;
            children[k] = offset[c];
        }
    }
    self->n_words = (Py_ssize_t)words; self->n_nodes = used; self->n_dense = dense; self->n_keys = n_keys;
    failed = build_jumps(self);
done:
    PyMem_Free(tmp); PyMem_Free(offset); PyMem_Free(stack);
    return failed;
}

static PyObject *Searcher_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"keys", "automaton", NULL};
    PyObject *keys, *automaton;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:Searcher", names, &keys, &automaton)) return NULL;
    PyObject *sequence = PySequence_Fast(keys, "keys must be a sequence of bytes");
    if (!sequence) return NULL;
    Searcher *self = (Searcher *)type->tp_alloc(type, 0);
    if (!self) { Py_DECREF(sequence); return NULL; }
    Py_INCREF(automaton);
    self->automaton = automaton;
    int failed = build(self, sequence);
    Py_DECREF(sequence);
    if (failed) { Py_DECREF(self); return NULL; }
    return (PyObject *)self;
}

static PyObject *append_hit(PyObject *hits, int32_t key, Py_ssize_t start, Py_ssize_t end) {
    PyObject *hit = Py_BuildValue("(inn)", key, start, end);
    if (!hit || PyList_Append(hits, hit) < 0) { Py_XDECREF(hit); return NULL; }
    Py_DECREF(hit);
    return hits;
}

/* The node JUMP bytes down for the JUMP bytes in `ahead`, and the longest shorter key on the way
 * (as Jump.shorter), or 0 when no key of JUMP bytes or more begins with them. */
static inline uint32_t jump_to(const Searcher *self, uint64_t ahead, int32_t *shorter) {
    uint64_t h = mix(ahead), bits = bloom_bits(h);
    if ((*bloom_word(&self->jump_bloom, h) & bits) != bits) return 0;
    for (uint64_t slot = h & self->jump_mask; self->jumps[slot].node; slot = (slot + 1) & self->jump_mask) {
        if (self->jumps[slot].prefix == ahead) {
            *shorter = self->jumps[slot].shorter;
            return self->jumps[slot].node;
        }
    }
    return 0;
}

/* Whether a key shorter than JUMP bytes may begin at `ahead` (exact but for the filter's errors). */
static inline int short_key_at(const Searcher *self, uint64_t ahead) {
    if (BIT_GET(self->short2, (ahead & 0xFF) << 8 | (ahead >> 8 & 0xFF))) return 1;
    if (!self->short_lengths) return 0;
    uint64_t word = *bloom_word(&self->short_bloom, mix(first_bytes(ahead, 4)));
    for (int len = 4; len < JUMP; len++) {
        if (self->short_lengths >> len & 1) {
            uint64_t bits = bloom_bits(short_hash(first_bytes(ahead, len), len));
            if ((word & bits) == bits) return 1;
        }
    }
    return 0;
}

/* 1: found all hits; 0: over the budget (hits incomplete); -1: error. */
static int walk(const Searcher *self, const uint8_t *s, Py_ssize_t n, PyObject *hits) {
    const uint32_t *trie = self->trie;
    Py_ssize_t budget = WALK_BUDGET * n + WALK_BUDGET_BASE, i = 0;
    while (i < n) {
        uint8_t b0 = s[i];
        uint32_t node;
        int32_t best = -1;
        Py_ssize_t j, best_end = 0;
        if (i + JUMP <= n) {
            /* first2 (8 KB, soon all in the cache) rules out a trail byte and a char that begins
             * no key; the filters of keys' beginnings most of what is left. */
            if (!BIT_GET(self->first2, b0 << 8 | s[i + 1])) { i++; continue; }
            uint64_t ahead = load64(s + i);
            int32_t shorter = -1;
            node = jump_to(self, ahead, &shorter);
            if (node) {
                budget--;
                j = i + JUMP;
                if (shorter >= 0) {
                    best = shorter & ((1 << SHORTER_SHIFT) - 1);
                    best_end = i + (shorter >> SHORTER_SHIFT);
                }
            } else if (short_key_at(self, ahead)) {
                node = trie[2 + b0];  /* the root's table */
                j = i + 1;
            } else {
                i++;
                continue;
            }
        } else {
            int candidate = i + 1 < n ? BIT_GET(self->first2, b0 << 8 | s[i + 1]) != 0
                                      : BIT_GET(self->one, b0) != 0;
            if (!candidate) { i++; continue; }
            node = trie[2 + b0];
            j = i + 1;
        }
        while (node) {
            int32_t key = (int32_t)trie[node];
            if (key >= 0) { best = key; best_end = j; }
            if (j >= n || --budget < 0) break;
            node = child_of(trie, node, s[j++]);
        }
        if (budget < 0) return 0;
        if (best >= 0) {
            if (!append_hit(hits, best, i, best_end)) return -1;
            i = best_end;
        } else {
            i++;
        }
    }
    return 1;
}

static PyObject *Searcher_find(Searcher *self, PyObject *data) {
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *hits = PyList_New(0);
    int found = hits ? walk(self, (const uint8_t *)view.buf, view.len, hits) : -1;
    PyBuffer_Release(&view);
    if (found == 1) return hits;
    Py_XDECREF(hits);
    if (found < 0) return NULL;
    return PyObject_CallMethodOneArg(self->automaton, search_name, data);
}

static PyObject *Searcher_sizes(Searcher *self, PyObject *unused) {
    Py_ssize_t bytes = self->n_words * 4 + 2 * 8192 + 32
                       + (Py_ssize_t)(self->jump_mask + 1) * (Py_ssize_t)sizeof(Jump)
                       + ((Py_ssize_t)8 << (64 - self->jump_bloom.shift))
                       + ((Py_ssize_t)8 << (64 - self->short_bloom.shift));
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n}", "keys", self->n_keys, "nodes", self->n_nodes,
                         "dense_nodes", self->n_dense, "jumps", self->n_jumps, "bytes", bytes);
}

static int Searcher_traverse(Searcher *self, visitproc visit, void *arg) {
    Py_VISIT(self->automaton);
    return 0;
}

static int Searcher_clear(Searcher *self) {
    Py_CLEAR(self->automaton);
    return 0;
}

static void Searcher_dealloc(Searcher *self) {
    PyObject_GC_UnTrack(self);
    Searcher_clear(self);
    PyMem_Free(self->trie); PyMem_Free(self->jumps);
    PyMem_Free(self->jump_bloom.words); PyMem_Free(self->short_bloom.words);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Searcher_methods[] = {
    {"find_matches_as_indexes", (PyCFunction)Searcher_find, METH_O,
     "[(key index, start, end), ...]: leftmost-longest, not overlapping, as the automaton's."},
    {"sizes", (PyCFunction)Searcher_sizes, METH_NOARGS, "keys, trie nodes, dense nodes, jumps and bytes held."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SearcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rules.text._wordsearch.Searcher",
    .tp_basicsize = sizeof(Searcher),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Leftmost-longest search of byte keys; see the module's comment.",
    .tp_new = Searcher_new,
    .tp_dealloc = (destructor)Searcher_dealloc,
    .tp_traverse = (traverseproc)Searcher_traverse,
    .tp_clear = (inquiry)Searcher_clear,
    .tp_methods = Searcher_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wordsearch", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__wordsearch(void) {
    search_name = PyUnicode_InternFromString("find_matches_as_indexes");
    if (!search_name || PyType_Ready(&SearcherType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&SearcherType);
    if (PyModule_AddObject(m, "Searcher", (PyObject *)&SearcherType) < 0) {
        Py_DECREF(&SearcherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
