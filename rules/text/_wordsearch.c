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
 * caches the rest of the request has filled. Here most positions of a message are ruled out by two
 * small bitmaps (8 KB and 128 KB) of how keys begin, and only the few positions left walk a trie
 * from there for the longest key. Which key is found where is exactly the automaton's:
 * leftmost-longest is "at the first position where some key starts, the longest key starting there",
 * which is what the scan below does.
 *
 * A text made to defeat the bitmaps (a long run of a key's prefix) would make the walks long: the
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
#define FOUR_BITS 20           /* the first-four-bytes bitmap: 2^20 bits, 128 KB */

typedef struct {
    int32_t first;    /* index of its first edge */
    int32_t key;      /* the key ending here, or -1 */
    uint16_t count;   /* edges */
    int32_t dense;    /* index of its 256-entry table, or -1 */
} Node;

typedef struct {
    int32_t next;
    uint8_t label;
} Edge;

typedef struct {
    PyObject_HEAD
    Node *nodes;
    Edge *edges;
    int32_t *dense;         /* 256 entries per dense node; 0: no child (the root is never a child) */
    uint8_t short2[8192];   /* (b0, b1) begins a key of at most 3 bytes (a 1-byte key: every b1) */
    uint8_t first2[8192];   /* (b0, b1) begins a key of any length */
    uint8_t one[32];        /* b0 is a whole key */
    uint8_t *four;          /* hash of the first 4 bytes of a key of 4 or more */
    Py_ssize_t n_nodes, n_edges, n_dense, n_keys;
    PyObject *automaton;    /* for texts that would make the walks long */
} Searcher;

static PyObject *search_name;

#define BIT_SET(map, i) ((map)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))
#define BIT_GET(map, i) ((map)[(i) >> 3] & (1u << ((i) & 7)))

static inline uint32_t four_hash(const uint8_t *s) {
    uint32_t v;
    memcpy(&v, s, 4);
    return (v * 2654435761u) >> (32 - FOUR_BITS);
}

/* Building: a trie with linked children first, then laid out breadth-first with sorted edges. */
typedef struct { int32_t child, sibling, key; uint8_t label; } BuildNode;

static int compare_labels(const void *a, const void *b) {
    return (int)((const Edge *)a)->label - (int)((const Edge *)b)->label;
}

static int build(Searcher *self, PyObject *keys) {
    Py_ssize_t n_keys = PySequence_Fast_GET_SIZE(keys), total = 1;
    for (Py_ssize_t k = 0; k < n_keys; k++) {
        PyObject *key = PySequence_Fast_GET_ITEM(keys, k);
        if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) == 0) {
            PyErr_SetString(PyExc_ValueError, "keys must be non-empty bytes");
            return -1;
        }
        total += PyBytes_GET_SIZE(key);
    }
    if (total >= INT32_MAX || n_keys >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many key bytes");
        return -1;
    }
    BuildNode *tmp = PyMem_Calloc((size_t)total, sizeof(BuildNode));
    int32_t *order = PyMem_Malloc(sizeof(int32_t) * (size_t)total);
    int32_t *renumbered = PyMem_Malloc(sizeof(int32_t) * (size_t)total);
    Edge *children = PyMem_Malloc(sizeof(Edge) * 256);
    self->four = PyMem_Calloc((size_t)1 << (FOUR_BITS - 3), 1);
    if (!tmp || !order || !renumbered || !children || !self->four) {
        PyMem_Free(tmp); PyMem_Free(order); PyMem_Free(renumbered); PyMem_Free(children);
        PyErr_NoMemory();
        return -1;
    }
    int32_t used = 1;
    tmp[0].child = tmp[0].sibling = tmp[0].key = -1;
    for (Py_ssize_t k = 0; k < n_keys; k++) {
        PyObject *key = PySequence_Fast_GET_ITEM(keys, k);
        const uint8_t *s = (const uint8_t *)PyBytes_AS_STRING(key);
        Py_ssize_t len = PyBytes_GET_SIZE(key);
        int32_t node = 0;
        for (Py_ssize_t j = 0; j < len; j++) {
            int32_t c = tmp[node].child;
            while (c >= 0 && tmp[c].label != s[j]) c = tmp[c].sibling;
            if (c < 0) {
                c = used++;
                tmp[c].child = -1; tmp[c].key = -1; tmp[c].label = s[j];
                tmp[c].sibling = tmp[node].child;
                tmp[node].child = c;
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
            else BIT_SET(self->four, four_hash(s));
        }
    }
    self->nodes = PyMem_Calloc((size_t)used, sizeof(Node));
    self->edges = PyMem_Calloc((size_t)(used > 1 ? used - 1 : 1), sizeof(Edge));
    if (!self->nodes || !self->edges) {
        PyMem_Free(tmp); PyMem_Free(order); PyMem_Free(renumbered); PyMem_Free(children);
        PyErr_NoMemory();
        return -1;
    }
    int32_t head = 0, tail = 0, edges = 0, dense = 0;
    order[tail++] = 0;
    renumbered[0] = 0;
    while (head < tail) {
        int32_t old = order[head], id = head;
        head++;
        int count = 0;
        for (int32_t c = tmp[old].child; c >= 0; c = tmp[c].sibling) {
            children[count].label = tmp[c].label;
            children[count].next = c;
            count++;
        }
        qsort(children, (size_t)count, sizeof(Edge), compare_labels);
        self->nodes[id].first = edges;
        self->nodes[id].count = (uint16_t)count;
        self->nodes[id].key = tmp[old].key;
        self->nodes[id].dense = (id == 0 || count > DENSE_CHILDREN) ? dense++ : -1;
        for (int i = 0; i < count; i++) {
            renumbered[children[i].next] = tail;
            order[tail++] = children[i].next;
            self->edges[edges].label = children[i].label;
            self->edges[edges].next = renumbered[children[i].next];
            edges++;
        }
    }
    self->dense = PyMem_Calloc((size_t)dense * 256, sizeof(int32_t));
    if (!self->dense) {
        PyMem_Free(tmp); PyMem_Free(order); PyMem_Free(renumbered); PyMem_Free(children);
        PyErr_NoMemory();
        return -1;
    }
    for (int32_t id = 0; id < used; id++) {
        Node *node = &self->nodes[id];
        if (node->dense < 0) continue;
        int32_t *table = self->dense + (size_t)node->dense * 256;
        for (int i = 0; i < node->count; i++) table[self->edges[node->first + i].label] = self->edges[node->first + i].next;
    }
    self->n_nodes = used; self->n_edges = edges; self->n_dense = dense; self->n_keys = n_keys;
    PyMem_Free(tmp); PyMem_Free(order); PyMem_Free(renumbered); PyMem_Free(children);
    return 0;
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

static inline int32_t child_of(const Searcher *self, const Node *node, uint8_t byte) {
    if (node->dense >= 0) return self->dense[(size_t)node->dense * 256 + byte];
    const Edge *edge = self->edges + node->first, *end = edge + node->count;
    for (; edge < end; edge++) {
        if (edge->label >= byte) return edge->label == byte ? edge->next : 0;
    }
    return 0;
}

static PyObject *append_hit(PyObject *hits, int32_t key, Py_ssize_t start, Py_ssize_t end) {
    PyObject *hit = Py_BuildValue("(inn)", key, start, end);
    if (!hit || PyList_Append(hits, hit) < 0) { Py_XDECREF(hit); return NULL; }
    Py_DECREF(hit);
    return hits;
}

/* 1: found all hits; 0: over the budget (hits incomplete); -1: error. */
static int walk(const Searcher *self, const uint8_t *s, Py_ssize_t n, PyObject *hits) {
    Py_ssize_t budget = WALK_BUDGET * n + WALK_BUDGET_BASE, i = 0;
    const int32_t *root = self->dense;  /* the root's table is the first */
    while (i < n) {
        uint8_t b0 = s[i];
        int candidate;
        if (i + 3 < n) {
            /* first2 (8 KB, soon all in the cache) rules out most positions: a trail byte or a
             * char that begins no key; the 128 KB table is read only for what is left. */
            int pair = b0 << 8 | s[i + 1];
            candidate = BIT_GET(self->first2, pair)
                        && (BIT_GET(self->short2, pair) || BIT_GET(self->four, four_hash(s + i)));
        } else if (i + 1 < n) {
            candidate = BIT_GET(self->first2, b0 << 8 | s[i + 1]) != 0;
        } else {
            candidate = BIT_GET(self->one, b0) != 0;
        }
        if (!candidate) { i++; continue; }
        int32_t node = root[b0], best = -1;
        Py_ssize_t j = i + 1, best_end = 0;
        while (node) {
            const Node *at = &self->nodes[node];
            if (at->key >= 0) { best = at->key; best_end = j; }
            if (j >= n || --budget < 0) break;
            node = child_of(self, at, s[j++]);
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
    Py_ssize_t bytes = self->n_nodes * (Py_ssize_t)sizeof(Node) + self->n_edges * (Py_ssize_t)sizeof(Edge)
                       + self->n_dense * 256 * 4 + 2 * 8192 + 32 + ((Py_ssize_t)1 << (FOUR_BITS - 3));
    return Py_BuildValue("{s:n,s:n,s:n,s:n}", "keys", self->n_keys, "nodes", self->n_nodes,
                         "dense_nodes", self->n_dense, "bytes", bytes);
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
    PyMem_Free(self->nodes); PyMem_Free(self->edges); PyMem_Free(self->dense); PyMem_Free(self->four);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Searcher_methods[] = {
    {"find_matches_as_indexes", (PyCFunction)Searcher_find, METH_O,
     "[(key index, start, end), ...]: leftmost-longest, not overlapping, as the automaton's."},
    {"sizes", (PyCFunction)Searcher_sizes, METH_NOARGS, "keys, trie nodes, dense nodes and bytes held."},
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
