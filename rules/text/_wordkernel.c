/* The sensitive-word engine's hot path in C (optional; rules/text/words.py has the same
 * steps in Python and numpy, and falls back to them when this module is not built).
 *
 * Kernel(table, width, fold, latin_codes, flags, automaton, longest, check_latin, max_rescans)
 *   .encode(text)            -> the compact search stream (bytes), or None when a char of
 *                               the text escapes to the per-char path (SearchEncoding.encode)
 *   .resolve(text, data, hits) -> [(pattern index, first, last)] in original offsets, the
 *                               whole-word check and its re-searches done (WordMatcher._candidates)
 * has_tone_number(text), symbol_at_letter(text, symbols): variants.py's per-message scans.
 *
 * Every str is read by code point (PyUnicode_READ), lone surrogates and NUL included; every
 * index read from Python (a hit) is bounds-checked, and errors come back as exceptions.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define CODE_POINTS 0x110000

static PyObject *category_func;  /* unicodedata.category, for marks after a match */
static PyObject *search_name;    /* "find_matches_as_indexes", interned once */

typedef struct Kernel_ {
    PyObject_HEAD
    Py_buffer table;      /* one code per code point, `width` bytes, little-endian */
    int width;
    int fold;
    uint32_t escape;      /* all bytes 0xFF: the char needs the per-char path */
    uint32_t *latin;      /* sorted codes standing for a Latin letter or digit */
    Py_ssize_t latin_count;
    PyObject *flags;      /* bytes, per pattern: 1 allowed, 2 latin_only */
    PyObject *automaton;
    Py_ssize_t longest;
    int check_latin;
    int max_rescans;
    /* The checks of hits that needed an overlay (set once by configure(); see matches()). */
    int configured;
    PyObject *patterns;   /* tuple of (word, category, ...) tuples, by pattern index */
    PyObject *match_type; /* Match(start, end, word, category, via) */
    int check;            /* 0: no overlays, every hit stands as written */
    Py_buffer base;       /* the overlay-free normaliser's codes, planes 0-1 (+ escape slot) */
    int base_fold;
    uint32_t *pairs;      /* per pattern: the two chars of a two-char Chinese word, or 0s */
    PyObject *allowed;    /* frozenset of allow entries normalised without overlays */
    PyObject *classify;   /* classify_hit(index, span, seen) -> via or None */
    PyObject *normalize;  /* the base normalize_short, for a span the table cannot do */
    PyObject *wanted;     /* per pattern: its word normalised without overlays, or None */
    PyObject *leet;       /* str: the leet symbols (one char each) */
    uint32_t *confusable; /* sorted code points that look like a Latin letter */
    Py_ssize_t confusable_count;
    /* find(): texts it leaves to Python (they need a second pass) */
    PyObject *symbols;    /* str: leet symbols of the symbol pass ("" without one) */
    Py_ssize_t symbol_count;
    uint64_t ascii_symbols[2];  /* the ASCII ones as a bitmap */
    Py_UCS4 *wide_symbols;      /* the others */
    Py_ssize_t wide_symbol_count;
    struct Kernel_ *symbol_kernel;  /* the symbol pass's kernel, configured; or NULL */
    Py_ssize_t max_looks;
    int tones;            /* pinyin: a text with a tone number gets a pass without them */
} Kernel;

static inline uint32_t
table_code(const Kernel *k, Py_UCS4 cp)
{
    const unsigned char *t = (const unsigned char *)k->table.buf;
    if (cp >= CODE_POINTS)
        return k->escape;  /* cannot happen for a str; treated like a char past the table */
    switch (k->width) {
    case 1: return t[cp];
    case 2: return (uint32_t)t[2 * cp] | ((uint32_t)t[2 * cp + 1] << 8);
    default: {
        const unsigned char *p = t + 4 * (size_t)cp;
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    }
    }
}

static inline uint32_t
data_code(const unsigned char *p, int width)
{
    uint32_t value = 0;
    for (int i = width - 1; i >= 0; i--)
        value = (value << 8) | p[i];
    return value;
}

static inline void
put_code(unsigned char *p, uint32_t code, int width)
{
    for (int i = 0; i < width; i++)
        p[i] = (unsigned char)(code >> (8 * i));
}

static inline int
is_ascii_letter(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int
is_ascii_alnum(Py_UCS4 c)
{
    return is_ascii_letter(c) || (c >= '0' && c <= '9');
}

/* variants.has_tone_number: a digit 1-5 right after an ASCII letter. */
static int
tone_number_in(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    for (Py_ssize_t i = 1; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        if (c >= '1' && c <= '5' && is_ascii_letter(PyUnicode_READ(kind, chars, i - 1)))
            return 1;
    }
    return 0;
}

/* variants.symbol_at_letter for one-char symbols: one touches an ASCII letter or digit, or
 * the text holds more than `max_looks` of them (then the pass simply runs). */
static int
symbol_touches_letter(PyObject *text, PyObject *symbols, Py_ssize_t max_looks)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text), count = PyUnicode_GET_LENGTH(symbols);
    int kind = PyUnicode_KIND(text), symbol_kind = PyUnicode_KIND(symbols);
    const void *chars = PyUnicode_DATA(text), *symbol_chars = PyUnicode_DATA(symbols);
    Py_ssize_t looked = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        int symbol = 0;
        for (Py_ssize_t s = 0; s < count && !symbol; s++)
            symbol = c == PyUnicode_READ(symbol_kind, symbol_chars, s);
        if (!symbol)
            continue;
        if ((i && is_ascii_alnum(PyUnicode_READ(kind, chars, i - 1)))
            || (i + 1 < length && is_ascii_alnum(PyUnicode_READ(kind, chars, i + 1))))
            return 1;
        if (++looked > max_looks)
            return 1;
    }
    return 0;
}

static void
Kernel_dealloc(Kernel *self)
{
    if (self->table.obj != NULL)
        PyBuffer_Release(&self->table);
    PyMem_Free(self->latin);
    Py_XDECREF(self->flags);
    Py_XDECREF(self->automaton);
    if (self->base.obj != NULL)
        PyBuffer_Release(&self->base);
    PyMem_Free(self->pairs);
    Py_XDECREF(self->patterns);
    Py_XDECREF(self->match_type);
    Py_XDECREF(self->allowed);
    Py_XDECREF(self->classify);
    Py_XDECREF(self->normalize);
    Py_XDECREF(self->wanted);
    Py_XDECREF(self->leet);
    PyMem_Free(self->confusable);
    Py_XDECREF(self->symbols);
    PyMem_Free(self->wide_symbols);
    Py_XDECREF(self->symbol_kernel);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
compare_codes(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A sequence of code points (ints) as a fresh uint32 array (one spare slot, so never empty);
   its length in *count. NULL with an exception set on any failure. */
static uint32_t *
read_codes(PyObject *sequence, const char *what, Py_ssize_t *count)
{
    PyObject *seq = PySequence_Fast(sequence, what);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint32_t *codes = PyMem_Malloc(sizeof(uint32_t) * (n + 1));
    if (codes == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long value = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(seq, i));
        if (value == (unsigned long)-1 && PyErr_Occurred()) {
            PyMem_Free(codes);
            Py_DECREF(seq);
            return NULL;
        }
        codes[i] = (uint32_t)value;
    }
    Py_DECREF(seq);
    *count = n;
    return codes;
}

static PyObject *
Kernel_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"table", "width", "fold", "latin_codes", "flags", "automaton",
                            "longest", "check_latin", "max_rescans", NULL};
    PyObject *table, *latin_codes, *flags, *automaton;
    int width, fold, check_latin, max_rescans;
    Py_ssize_t longest;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OipOSOnpi", names, &table, &width, &fold,
                                     &latin_codes, &flags, &automaton, &longest, &check_latin,
                                     &max_rescans))
        return NULL;
    if (width != 1 && width != 2 && width != 4) {
        PyErr_SetString(PyExc_ValueError, "width must be 1, 2 or 4");
        return NULL;
    }
    Kernel *self = (Kernel *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (PyObject_GetBuffer(table, &self->table, PyBUF_C_CONTIGUOUS) < 0) {
        self->table.obj = NULL;
        Py_DECREF(self);
        return NULL;
    }
    if (self->table.len != (Py_ssize_t)CODE_POINTS * width) {
        PyErr_SetString(PyExc_ValueError, "table must hold one code per code point");
        Py_DECREF(self);
        return NULL;
    }
    self->width = width;
    self->fold = fold;
    self->escape = width == 4 ? 0xFFFFFFFFu : (1u << (8 * width)) - 1;
    PyObject *seq = PySequence_Fast(latin_codes, "latin_codes must be a sequence of ints");
    if (seq == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->latin_count = PySequence_Fast_GET_SIZE(seq);
    self->latin = PyMem_Malloc(sizeof(uint32_t) * (self->latin_count + 1));
    if (self->latin == NULL) {
        Py_DECREF(seq);
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < self->latin_count; i++) {
        unsigned long value = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(seq, i));
        if (value == (unsigned long)-1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            Py_DECREF(self);
            return NULL;
        }
        self->latin[i] = (uint32_t)value;
    }
    Py_DECREF(seq);
    qsort(self->latin, self->latin_count, sizeof(uint32_t), compare_codes);
    Py_INCREF(flags);
    self->flags = flags;
    Py_INCREF(automaton);
    self->automaton = automaton;
    self->longest = longest;
    self->check_latin = check_latin;
    self->max_rescans = max_rescans;
    return (PyObject *)self;
}

/* For encoded char p: the original indices of the first and last char folded into it. */
typedef struct {
    Py_ssize_t *first, *last, count;
} Offsets;

/* What encode_text does besides encoding, and what it met. */
enum {
    ENCODE_SCANS = 1,  /* stop at a text find() leaves to Python (a second pass) */
    ENCODE_DATA = 2,   /* write the codes */
    ENCODE_MAP = 4,    /* fill the Offsets */
};
#define ENCODE_ESCAPED (-1)  /* a char the table cannot do: the per-char path */
#define ENCODE_TONE (-2)     /* a tone number: the tone pass (Python's steps) */
#define ENCODE_SYMBOL (-3)   /* a leet symbol at a letter: the symbol pass */

/* A little-endian 16-bit code: one load or store where the machine is little-endian. */
static inline uint32_t
load16(const unsigned char *p)
{
#if PY_LITTLE_ENDIAN
    uint16_t value;
    memcpy(&value, p, 2);
    return value;
#else
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
#endif
}

static inline void
store16(unsigned char *p, uint32_t code)
{
#if PY_LITTLE_ENDIAN
    uint16_t value = (uint16_t)code;
    memcpy(p, &value, 2);
#else
    p[0] = (unsigned char)code;
    p[1] = (unsigned char)(code >> 8);
#endif
}

/* Is c, past ASCII, one of the symbol pass's symbols (ASCII ones are a bitmap)? */
static inline int
is_wide_symbol(const Kernel *self, Py_UCS4 c)
{
    for (Py_ssize_t s = 0; s < self->wide_symbol_count; s++)
        if (self->wide_symbols[s] == c)
            return 1;
    return 0;
}

/* SearchEncoding.encode's loop (look up, drop, fold) for one str kind and code width, so
 * the compiler makes a tight loop of each (PyUnicode_READ and the width switch per char
 * were half the kernel's own instructions).  With ENCODE_SCANS it also does find()'s two
 * scans in the same pass: variants.symbol_at_letter (a symbol touching an ASCII letter or
 * digit, or more than max_looks symbols) and has_tone_number (a digit 1-5 right after an
 * ASCII letter).  Returns the encoded chars, or ENCODE_ESCAPED, ENCODE_TONE or ENCODE_SYMBOL
 * for the first such char met (a tone number may follow a symbol's stop). */
static inline __attribute__((always_inline)) Py_ssize_t
encode_loop(const Kernel *self, const int kind, const void *chars, Py_ssize_t length,
            const int width, unsigned char *data, Offsets *map, const int what)
{
    const unsigned char *table = (const unsigned char *)self->table.buf;
    const uint32_t escape = self->escape;
    const int fold = self->fold;
    const int scans = (what & ENCODE_SCANS) && (self->symbol_count || self->tones);
    const int tones = self->tones, wide_symbols = self->wide_symbol_count > 0;
    const uint64_t symbols_low = self->ascii_symbols[0], symbols_high = self->ascii_symbols[1];
    Py_ssize_t n = 0, looks = 0;
    uint32_t previous = 0;  /* no code is 0, so the first char never folds */
    Py_UCS4 before = 0;  /* the char before this one (for the scans) */
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 cp = kind == PyUnicode_1BYTE_KIND ? ((const Py_UCS1 *)chars)[i]
                     : kind == PyUnicode_2BYTE_KIND ? ((const Py_UCS2 *)chars)[i]
                     : ((const Py_UCS4 *)chars)[i];
        if (scans) {
            int symbol;
            if (cp < 128) {
                if (tones && cp >= '1' && cp <= '5' && is_ascii_letter(before))
                    return ENCODE_TONE;
                symbol = (int)(((cp < 64 ? symbols_low : symbols_high) >> (cp & 63)) & 1);
            } else
                symbol = wide_symbols && is_wide_symbol(self, cp);
            if (symbol) {
                Py_UCS4 after = i + 1 < length ? PyUnicode_READ(kind, chars, i + 1) : 0;
                if (is_ascii_alnum(before) || is_ascii_alnum(after) || ++looks > self->max_looks)
                    return ENCODE_SYMBOL;
            }
            before = cp;
        }
        uint32_t code;
        if (cp >= CODE_POINTS)
            code = escape;  /* cannot happen for a str; treated like a char past the table */
        else if (width == 1)
            code = table[cp];
        else if (width == 2)
            code = load16(table + 2 * (size_t)cp);
        else
            code = data_code(table + 4 * (size_t)cp, 4);
        if (code == 0)
            continue;  /* dropped */
        if (code == escape)
            return ENCODE_ESCAPED;
        if (fold && code == previous) {
            if (what & ENCODE_MAP)
                map->last[n - 1] = i;
            continue;
        }
        if (what & ENCODE_DATA) {
            if (width == 1)
                data[n] = (unsigned char)code;
            else if (width == 2)
                store16(data + 2 * n, code);
            else
                put_code(data + 4 * n, code, 4);
        }
        if (what & ENCODE_MAP)
            map->first[n] = map->last[n] = i;
        previous = code;
        n++;
    }
    if (what & ENCODE_MAP)
        map->count = n;
    return n;
}

#define ENCODE_WIDTHS(kind_, what_) \
    (width == 1 ? encode_loop(self, kind_, chars, length, 1, data, map, what_) \
     : width == 2 ? encode_loop(self, kind_, chars, length, 2, data, map, what_) \
     : encode_loop(self, kind_, chars, length, 4, data, map, what_))
#define ENCODE_KINDS(what_) \
    (kind == PyUnicode_1BYTE_KIND ? ENCODE_WIDTHS(PyUnicode_1BYTE_KIND, what_) \
     : kind == PyUnicode_2BYTE_KIND ? ENCODE_WIDTHS(PyUnicode_2BYTE_KIND, what_) \
     : ENCODE_WIDTHS(PyUnicode_4BYTE_KIND, what_))

/* encode_loop for any text: data (length * width bytes) and map (arrays of length + 1)
 * may each be NULL; a loop is made for each case find(), encode() and offsets_of() use. */
static Py_ssize_t
encode_text(const Kernel *self, PyObject *text, unsigned char *data, Offsets *map, int what)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text), width = self->width;
    const void *chars = PyUnicode_DATA(text);
    if (data != NULL && map != NULL)
        return what & ENCODE_SCANS ? ENCODE_KINDS(ENCODE_SCANS | ENCODE_DATA | ENCODE_MAP)
                                   : ENCODE_KINDS(ENCODE_DATA | ENCODE_MAP);
    if (data != NULL)
        return ENCODE_KINDS(ENCODE_DATA);
    if (map != NULL)
        return ENCODE_KINDS(ENCODE_MAP);
    return ENCODE_KINDS(0);
}

/* SearchEncoding.encode in one pass: look up, drop, fold; None if a char escapes. */
static PyObject *
Kernel_encode(Kernel *self, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be str");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, PyUnicode_GET_LENGTH(text) * self->width);
    if (out == NULL)
        return NULL;
    Py_ssize_t n = encode_text(self, text, (unsigned char *)PyBytes_AS_STRING(out), NULL, 0);
    if (n < 0) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    if (_PyBytes_Resize(&out, n * self->width) < 0)
        return NULL;
    return out;
}

/* Allocate map's arrays for a text of `length` chars. */
static int
offsets_alloc(Offsets *map, Py_ssize_t length)
{
    map->first = PyMem_Malloc(sizeof(Py_ssize_t) * (2 * length + 2));
    if (map->first == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    map->last = map->first + length + 1;
    map->count = 0;
    return 0;
}

static int
offsets_of(const Kernel *self, PyObject *text, Offsets *map)
{
    if (offsets_alloc(map, PyUnicode_GET_LENGTH(text)) < 0)
        return -1;
    if (encode_text(self, text, NULL, map, 0) < 0) {  /* only ENCODE_ESCAPED without scans */
        PyMem_Free(map->first);
        PyErr_SetString(PyExc_ValueError, "text escapes the table: use the per-char path");
        return -1;
    }
    return 0;
}

/* OffsetMap.adjacent: no original char dropped between encoded chars p-1 and p. */
static inline int
adjacent(const Offsets *map, Py_ssize_t p)
{
    return p > 0 && p < map->count && map->first[p] <= map->last[p - 1] + 1;
}

static int
latin_at(const Kernel *self, const unsigned char *data, Py_ssize_t size, Py_ssize_t offset)
{
    if (offset < 0 || offset + self->width > size)
        return 0;
    uint32_t code = data_code(data + offset, self->width);
    return bsearch(&code, self->latin, self->latin_count, sizeof(uint32_t), compare_codes) != NULL;
}

/* unicodedata.category(ch) in ("Mn", "Me"), without a call for ranges that hold no mark. */
static int
is_mark(Py_UCS4 cp)
{
    if (cp < 0x300 || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF)
        || (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0x20000 && cp <= 0x2FFFF))
        return 0;
    PyObject *ch = PyUnicode_FromOrdinal(cp);
    if (ch == NULL)
        return -1;
    PyObject *category = PyObject_CallOneArg(category_func, ch);
    Py_DECREF(ch);
    if (category == NULL)
        return -1;
    int mark = PyUnicode_CompareWithASCIIString(category, "Mn") == 0
               || PyUnicode_CompareWithASCIIString(category, "Me") == 0;
    Py_DECREF(category);
    return mark;
}

/* One hit of the automaton, checked: its pattern index and byte offsets. */
static int
read_hit(PyObject *hit, Py_ssize_t patterns, Py_ssize_t *index, Py_ssize_t *start, Py_ssize_t *end)
{
    if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 3) {
        PyErr_SetString(PyExc_TypeError, "a hit must be an (index, start, end) tuple");
        return -1;
    }
    *index = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 0));
    *start = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 1));
    *end = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 2));
    if (PyErr_Occurred())
        return -1;
    if (*index < 0 || *index >= patterns) {
        PyErr_SetString(PyExc_IndexError, "hit names no pattern");
        return -1;
    }
    return 0;
}

static PyObject *
search(const Kernel *self, PyObject *data, Py_ssize_t from, Py_ssize_t to)
{
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (to > size)
        to = size;
    if (from > to)
        from = to;
    PyObject *window = PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + from, to - from);
    if (window == NULL)
        return NULL;
    PyObject *hits = PyObject_CallMethodOneArg(self->automaton, search_name, window);
    Py_DECREF(window);
    if (hits != NULL && !PyList_Check(hits)) {
        Py_DECREF(hits);
        PyErr_SetString(PyExc_TypeError, "the automaton must return a list");
        return NULL;
    }
    return hits;
}

/* WordMatcher._hides_another: 1, 0, or -1 with an exception set. */
static int
hides_another(const Kernel *self, PyObject *data, const Offsets *map, Py_ssize_t start, Py_ssize_t end)
{
    int width = self->width;
    const unsigned char *flags = (const unsigned char *)PyBytes_AS_STRING(self->flags);
    Py_ssize_t patterns = PyBytes_GET_SIZE(self->flags);
    Py_ssize_t inside = (end - start - 1) * width;
    PyObject *hits = search(self, data, (start + 1) * width, end * width + self->longest);
    if (hits == NULL)
        return -1;
    int result = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(hits); i++) {
        Py_ssize_t index, at, stop;
        if (read_hit(PyList_GET_ITEM(hits, i), patterns, &index, &at, &stop) < 0) {
            result = -1;
            break;
        }
        if (at >= inside)
            break;
        if (!((flags[index] & 2) && adjacent(map, start + 1 + at / width))) {
            result = 1;
            break;
        }
    }
    Py_DECREF(hits);
    return result;
}

typedef int (*emit_func)(Kernel *, PyObject *text, PyObject *found, Py_ssize_t index,
                         Py_ssize_t first, Py_ssize_t last);

static int
emit_candidate(Kernel *self, PyObject *text, PyObject *found, Py_ssize_t index,
               Py_ssize_t first, Py_ssize_t last)
{
    PyObject *item = Py_BuildValue("(nnn)", index, first, last);
    if (item == NULL)
        return -1;
    int result = PyList_Append(found, item);
    Py_DECREF(item);
    return result;
}

/* The hits as emit() makes them.  `given`: the text's Offsets if the caller has them
 * (find() makes them while encoding), else NULL. */
static PyObject *
resolve_hits(Kernel *self, PyObject *text, PyObject *data, PyObject *hits, emit_func emit,
             const Offsets *given)
{
    const unsigned char *flags = (const unsigned char *)PyBytes_AS_STRING(self->flags);
    Py_ssize_t patterns = PyBytes_GET_SIZE(self->flags);
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data), length = PyUnicode_GET_LENGTH(text);
    int width = self->width, kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    Offsets map;
    if (given != NULL)
        map = *given;
    else if (offsets_of(self, text, &map) < 0)
        return NULL;
    if (map.count * width != size) {
        if (given == NULL)
            PyMem_Free(map.first);
        PyErr_SetString(PyExc_ValueError, "data is not this text's encoding");
        return NULL;
    }
    PyObject *found = PyList_New(0);
    if (found == NULL)
        goto fail;
    Py_INCREF(hits);
    Py_ssize_t base = 0;
    int rescans = 0;
    for (;;) {
        Py_ssize_t restart = -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(hits); i++) {
            Py_ssize_t index, start, end;
            if (read_hit(PyList_GET_ITEM(hits, i), patterns, &index, &start, &end) < 0)
                goto fail_hits;
            if (flags[index] & 1)
                continue;  /* an allow-list entry: consumes its span, never reported */
            start = (start + base) / width;
            end = (end + base) / width;
            if (start < 0 || end <= start || end > map.count) {
                PyErr_SetString(PyExc_IndexError, "hit outside the encoded text");
                goto fail_hits;
            }
            if (self->check_latin && (flags[index] & 2)) {
                int glued = (start > 0 && latin_at(self, bytes, size, (start - 1) * width)
                             && adjacent(&map, start))
                            || (end * width < size && latin_at(self, bytes, size, end * width)
                                && adjacent(&map, end));
                if (glued) {
                    if (rescans < self->max_rescans) {
                        int hides = hides_another(self, data, &map, start, end);
                        if (hides < 0)
                            goto fail_hits;
                        if (hides) {
                            rescans++;
                            restart = (start + 1) * width;
                            break;
                        }
                    }
                    continue;
                }
            }
            Py_ssize_t first = map.first[start], last = map.last[end - 1] + 1;
            /* Combining marks after the last matched char belong to it: mask them too. */
            while (last < length) {
                int mark = is_mark(PyUnicode_READ(kind, chars, last));
                if (mark < 0)
                    goto fail_hits;
                if (!mark)
                    break;
                last++;
            }
            if (emit(self, text, found, index, first, last) < 0)
                goto fail_hits;
        }
        Py_DECREF(hits);
        if (restart < 0)
            break;
        base = restart;
        hits = search(self, data, base, size);
        if (hits == NULL)
            goto fail;
    }
    if (given == NULL)
        PyMem_Free(map.first);
    return found;
fail_hits:
    Py_DECREF(hits);
fail:
    if (given == NULL)
        PyMem_Free(map.first);
    Py_XDECREF(found);
    return NULL;
}

static PyObject *
Kernel_resolve(Kernel *self, PyObject *args)
{
    PyObject *text, *data, *hits;
    if (!PyArg_ParseTuple(args, "USO!:resolve", &text, &data, &PyList_Type, &hits))
        return NULL;
    return resolve_hits(self, text, data, hits, emit_candidate, NULL);
}

static inline int
is_cjk(uint32_t cp)
{
    return (cp >= 0x3400 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF)
           || (cp >= 0x20000 && cp <= 0x2FA1F);
}

/* The overlay-free normalised span (normalize_short) into out; -1 if a char needs Python. */
static Py_ssize_t
normalize_span(const Kernel *self, int kind, const void *chars, Py_ssize_t first, Py_ssize_t last,
               Py_UCS4 *out)
{
    const uint32_t *codes = (const uint32_t *)self->base.buf;
    Py_ssize_t slots = self->base.len / 4 - 1, n = 0;  /* the last slot is the escape */
    for (Py_ssize_t i = first; i < last; i++) {
        Py_UCS4 cp = PyUnicode_READ(kind, chars, i);
        if ((Py_ssize_t)cp >= slots)
            return -1;
        uint32_t code = codes[cp];
        if (code == 0)
            continue;
        if (code > 0x10FFFF)
            return -1;  /* expands to several chars */
        if (self->base_fold && n && out[n - 1] == code)
            continue;
        out[n++] = code;
    }
    return n;
}

/* The homophone-pair shortcut for a seen str normalize_short made. */
static int
p_pair_rejects(const Kernel *self, Py_ssize_t index, PyObject *seen)
{
    uint32_t p0 = self->pairs[2 * index], p1 = self->pairs[2 * index + 1];
    if (!p0 || PyUnicode_GET_LENGTH(seen) != 2)
        return 0;
    Py_UCS4 a = PyUnicode_READ_CHAR(seen, 0), b = PyUnicode_READ_CHAR(seen, 1);
    return a != p0 && a != p1 && b != p0 && b != p1 && is_cjk(a) && is_cjk(b);
}

static inline int
is_ascii_alpha(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
str_has(PyObject *text, Py_UCS4 c)
{
    return PyUnicode_FindChar(text, c, 0, PyUnicode_GET_LENGTH(text), 1) >= 0;
}

static int
is_confusable(const Kernel *self, Py_UCS4 c)
{
    uint32_t code = c;
    return self->confusable_count
           && bsearch(&code, self->confusable, self->confusable_count, sizeof(uint32_t),
                      compare_codes) != NULL;
}

/* classify's kinds, by bit, and what a via of each set of them starts with (made once). */
static const char *const VIA_KINDS[] = {"leet", "confusables", "pinyin", "homophone"};
static PyObject *via_prefixes[16];
static PyObject *via_arrow;  /* " → " */

/* f"{'+'.join(kinds)}: {' '.join(span.split())} → {word}" (a new reference). */
static PyObject *
via_string(int kinds, PyObject *span, PyObject *word)
{
    if (via_prefixes[kinds] == NULL) {
        char prefix[64];
        size_t used = 0;
        for (int i = 0; i < 4; i++)
            if (kinds & (1 << i))
                used += (size_t)snprintf(prefix + used, sizeof(prefix) - used, "%s%s",
                                         used ? "+" : "", VIA_KINDS[i]);
        snprintf(prefix + used, sizeof(prefix) - used, ": ");
        if ((via_prefixes[kinds] = PyUnicode_InternFromString(prefix)) == NULL)
            return NULL;
    }
    if (via_arrow == NULL && (via_arrow = PyUnicode_FromOrdinal(0x2192)) != NULL) {
        PyObject *spaced = PyUnicode_FromFormat(" %U ", via_arrow);
        Py_SETREF(via_arrow, spaced);
    }
    if (via_arrow == NULL)
        return NULL;
    /* A span without whitespace is its own ' '.join(span.split()): no split then. */
    Py_ssize_t length = PyUnicode_GET_LENGTH(span);
    int kind = PyUnicode_KIND(span), spaces = 0;
    const void *chars = PyUnicode_DATA(span);
    for (Py_ssize_t i = 0; i < length && !spaces; i++)
        spaces = Py_UNICODE_ISSPACE(PyUnicode_READ(kind, chars, i));
    PyObject *joined;
    if (spaces) {
        PyObject *parts = PyUnicode_Split(span, NULL, -1), *space = PyUnicode_FromOrdinal(' ');
        joined = parts && space ? PyUnicode_Join(space, parts) : NULL;
        Py_XDECREF(parts);
        Py_XDECREF(space);
    } else {
        Py_INCREF(span);
        joined = span;
    }
    if (joined == NULL)
        return NULL;
    PyObject *pieces = PyTuple_Pack(4, via_prefixes[kinds], joined, via_arrow, word), *via = NULL;
    Py_DECREF(joined);
    if (pieces != NULL) {
        PyObject *nothing = PyUnicode_New(0, 0);
        if (nothing != NULL)
            via = PyUnicode_Join(nothing, pieces);
        Py_XDECREF(nothing);
        Py_DECREF(pieces);
    }
    return via;
}

/* variants.classify, step for step: the via string, "" or None (new references). */
static PyObject *
classify_hit(const Kernel *self, PyObject *span, PyObject *seen, PyObject *wanted, PyObject *word)
{
    int equal = PyUnicode_Compare(seen, wanted);
    if (equal == -1 && PyErr_Occurred())
        return NULL;
    if (equal == 0)
        return PyUnicode_New(0, 0);
    int kinds = 0, count = 0;  /* a bit per kind of VIA_KINDS, in classify's order */
    Py_ssize_t seen_length = PyUnicode_GET_LENGTH(seen), span_length = PyUnicode_GET_LENGTH(span);
    Py_ssize_t wanted_length = PyUnicode_GET_LENGTH(wanted);
    int latin = 0, latin_word = 0;
    for (Py_ssize_t i = 0; i < seen_length && !latin; i++)
        latin = is_ascii_alpha(PyUnicode_READ_CHAR(seen, i));
    for (Py_ssize_t i = 0; i < wanted_length && !latin_word; i++)
        latin_word = is_ascii_alpha(PyUnicode_READ_CHAR(wanted, i));
    /* A char of the span or of seen (set(span) | set(seen) in Python). */
    Py_ssize_t chars = span_length + seen_length;
#define CHAR_AT(i) ((i) < span_length ? PyUnicode_READ_CHAR(span, (i)) : PyUnicode_READ_CHAR(seen, (i) - span_length))
    if (latin_word) {
        int leet = 0;
        for (Py_ssize_t i = 0; i < chars && !leet; i++) {
            Py_UCS4 c = CHAR_AT(i);
            leet = str_has(self->leet, c) && !str_has(wanted, c) && !str_has(word, c);
        }
        if (leet) {
            if (!latin)
                Py_RETURN_NONE;  /* digits and symbols alone: a number, a price, not a word */
            kinds |= 1, count++;
        }
    }
    if (self->confusable_count) {
        int confusable = 0;
        for (Py_ssize_t i = 0; i < chars && !confusable; i++)
            confusable = is_confusable(self, CHAR_AT(i));
        if (confusable) {
            if (!latin)
                Py_RETURN_NONE;  /* one script throughout: real Cyrillic or Greek text */
            kinds |= 2, count++;
        }
    }
#undef CHAR_AT
    Py_ssize_t word_cjk = 0;
    for (Py_ssize_t i = 0; i < wanted_length; i++)
        word_cjk += is_cjk(PyUnicode_READ_CHAR(wanted, i));
    if (word_cjk && latin)
        kinds |= 4, count++;
    int span_cjk = 0, foreign = 0, kept = latin;
    for (Py_ssize_t i = 0; i < seen_length; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(seen, i);
        if (!is_cjk(c))
            continue;
        span_cjk = 1;
        if (str_has(wanted, c))
            kept = 1;  /* a char of the word as written (all of wanted's CJK chars are its) */
        else
            foreign = 1;
    }
    if (span_cjk && foreign) {
        if (word_cjk < 2 || (word_cjk < 3 && !kept))
            Py_RETURN_NONE;
        kinds |= 8, count++;
    }
    if (!count)
        return PyUnicode_New(0, 0);
    return via_string(kinds, span, word);
}

/* Match(first, last, word, category, via): filled like tuple.__new__ fills a subclass. */
static PyObject *
new_match(const Kernel *self, Py_ssize_t first, Py_ssize_t last, PyObject *word,
          PyObject *category, PyObject *via)
{
    PyTypeObject *type = (PyTypeObject *)self->match_type;
    PyObject *start = PyLong_FromSsize_t(first), *end = PyLong_FromSsize_t(last);
    PyObject *match = start && end ? type->tp_alloc(type, 5) : NULL;
    if (match == NULL) {
        Py_XDECREF(start);
        Py_XDECREF(end);
        return NULL;
    }
    Py_INCREF(word);
    Py_INCREF(category);
    Py_INCREF(via);
    PyTuple_SET_ITEM(match, 0, start);
    PyTuple_SET_ITEM(match, 1, end);
    PyTuple_SET_ITEM(match, 2, word);
    PyTuple_SET_ITEM(match, 3, category);
    PyTuple_SET_ITEM(match, 4, via);
    return match;
}

/* WordMatcher._resolve's checks for one candidate, then its Match appended to found. */
static int
emit_match(Kernel *self, PyObject *text, PyObject *found, Py_ssize_t index,
           Py_ssize_t first, Py_ssize_t last)
{
    PyObject *pattern = PyTuple_GET_ITEM(self->patterns, index);
    PyObject *word = PyTuple_GET_ITEM(pattern, 0), *category = PyTuple_GET_ITEM(pattern, 1);
    PyObject *via = NULL, *match = NULL, *span = NULL, *seen = NULL;
    int result = -1;
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    int as_written = PyUnicode_GET_LENGTH(word) == last - first;
    if (as_written) {
        int word_kind = PyUnicode_KIND(word);
        const void *word_chars = PyUnicode_DATA(word);
        for (Py_ssize_t i = 0; i < last - first && as_written; i++)
            as_written = PyUnicode_READ(kind, chars, first + i) == PyUnicode_READ(word_kind, word_chars, i);
    }
    if (!self->check || as_written) {
        via = PyUnicode_New(0, 0);
    } else {
        Py_UCS4 small[64], *out = small;
        if (last - first > 64 && (out = PyMem_Malloc(sizeof(Py_UCS4) * (last - first))) == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        Py_ssize_t n = normalize_span(self, kind, chars, first, last, out);
        span = PyUnicode_Substring(text, first, last);
        if (span == NULL)
            goto done_out;
        if (n >= 0) {
            uint32_t p0 = self->pairs[2 * index], p1 = self->pairs[2 * index + 1];
            if (p0 && n == 2 && out[0] != p0 && out[0] != p1 && out[1] != p0 && out[1] != p1
                && is_cjk(out[0]) && is_cjk(out[1])) {
                result = 0;  /* two homophones for a two-char word: classify says no, faster */
                goto done_out;
            }
            seen = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, n);
        } else {
            seen = PyObject_CallOneArg(self->normalize, span);
            if (seen != NULL && !PyUnicode_Check(seen)) {
                PyErr_SetString(PyExc_TypeError, "normalize_short must return str");
                Py_CLEAR(seen);
            }
        }
        if (seen == NULL)
            goto done_out;
        if (n < 0 && p_pair_rejects(self, index, seen)) {
            result = 0;
            goto done_out;
        }
        int allowed = PySet_Contains(self->allowed, seen);
        if (allowed) {
            result = allowed < 0 ? -1 : 0;  /* an allowed word an overlay made look listed */
            goto done_out;
        }
        PyObject *wanted = PyTuple_GET_ITEM(self->wanted, index);
        if (wanted == Py_None)  /* not a listed word's pattern: Python's way (and its error) */
            via = PyObject_CallFunction(self->classify, "nOO", index, span, seen);
        else
            via = classify_hit(self, span, seen, wanted, word);
        if (via == Py_None) {
            Py_CLEAR(via);
            result = 0;  /* an overlay's false positive (see variants.classify) */
        }
done_out:
        if (out != small)
            PyMem_Free(out);
        if (via == NULL)
            goto done;
    }
    if (via == NULL)
        goto done;
    match = new_match(self, first, last, word, category, via);
    if (match != NULL)
        result = PyList_Append(found, match);
done:
    Py_XDECREF(match);
    Py_XDECREF(via);
    Py_XDECREF(span);
    Py_XDECREF(seen);
    return result;
}

static PyObject *
Kernel_configure(Kernel *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"patterns", "match_type", "check", "base_codes", "base_fold", "pairs",
                            "allowed", "classify", "normalize", "wanted", "leet", "confusable", "symbols", "max_looks", "tones",
                            "symbol_kernel", NULL};
    PyObject *patterns, *match_type, *base_codes, *pairs, *allowed, *classify, *normalize;
    PyObject *wanted, *leet, *confusable, *symbols;
    Py_ssize_t max_looks;
    int check, base_fold, tones;
    PyObject *symbol_kernel = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!pOpOO!OOO!UOUnp|O", names, &PyTuple_Type, &patterns,
                                     &PyType_Type, &match_type, &check, &base_codes, &base_fold,
                                     &pairs, &PyFrozenSet_Type, &allowed, &classify, &normalize,
                                     &PyTuple_Type, &wanted, &leet, &confusable, &symbols,
                                     &max_looks, &tones, &symbol_kernel))
        return NULL;
    if (self->configured)
        Py_RETURN_NONE;  /* once: a matcher is shared by threads, its parts never change */
    if (symbol_kernel != Py_None && (!PyObject_TypeCheck(symbol_kernel, Py_TYPE(self))
                                     || !((Kernel *)symbol_kernel)->configured
                                     || PyUnicode_GET_LENGTH(((Kernel *)symbol_kernel)->symbols))) {
        PyErr_SetString(PyExc_TypeError, "symbol_kernel: a configured Kernel without a symbol pass, or None");
        return NULL;
    }
    Py_ssize_t count = PyBytes_GET_SIZE(self->flags);
    if (PyTuple_GET_SIZE(patterns) != count || PyTuple_GET_SIZE(wanted) != count) {
        PyErr_SetString(PyExc_ValueError, "one pattern (and wanted) per automaton key");
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)match_type, &PyTuple_Type)
        || ((PyTypeObject *)match_type)->tp_basicsize != PyTuple_Type.tp_basicsize) {
        PyErr_SetString(PyExc_TypeError, "match_type must be a plain tuple subclass (a NamedTuple)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pattern = PyTuple_GET_ITEM(patterns, i);
        if (!PyTuple_Check(pattern) || PyTuple_GET_SIZE(pattern) < 2
            || !PyUnicode_Check(PyTuple_GET_ITEM(pattern, 0))) {
            PyErr_SetString(PyExc_TypeError, "a pattern is a (word, category, ...) tuple");
            return NULL;
        }
        PyObject *one = PyTuple_GET_ITEM(wanted, i);
        if (one != Py_None && !PyUnicode_Check(one)) {
            PyErr_SetString(PyExc_TypeError, "wanted holds str or None");
            return NULL;
        }
    }
    uint32_t *codes = NULL, *confusables = NULL;
    Py_UCS4 *wide = NULL;
    Py_ssize_t pair_count = 0, confusable_count = 0;
    self->base.obj = NULL;
    codes = read_codes(pairs, "pairs must be a sequence", &pair_count);
    if (codes == NULL)
        goto fail;
    if (pair_count != 2 * count) {
        PyErr_SetString(PyExc_ValueError, "two pair chars per pattern");
        goto fail;
    }
    confusables = read_codes(confusable, "confusable must be a sequence of code points", &confusable_count);
    if (confusables == NULL)
        goto fail;
    qsort(confusables, confusable_count, sizeof(uint32_t), compare_codes);
    if (PyObject_GetBuffer(base_codes, &self->base, PyBUF_C_CONTIGUOUS) < 0) {
        self->base.obj = NULL;
        goto fail;
    }
    if (self->base.itemsize != 4 || self->base.len < 8) {
        PyErr_SetString(PyExc_ValueError, "base codes must be uint32");
        goto fail;
    }
    Py_ssize_t symbol_count = PyUnicode_GET_LENGTH(symbols);
    wide = PyMem_Malloc(sizeof(Py_UCS4) * (symbol_count + 1));
    if (wide == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    self->pairs = codes;
    self->confusable = confusables;
    self->confusable_count = confusable_count;
    Py_INCREF(wanted);
    self->wanted = wanted;
    Py_INCREF(leet);
    self->leet = leet;
    self->wide_symbols = wide;
    for (Py_ssize_t i = 0; i < symbol_count; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(symbols, i);
        if (c < 128)
            self->ascii_symbols[c >> 6] |= (uint64_t)1 << (c & 63);
        else
            wide[self->wide_symbol_count++] = c;
    }
    self->symbol_count = symbol_count;
    if (symbol_kernel != Py_None) {
        Py_INCREF(symbol_kernel);
        self->symbol_kernel = (Kernel *)symbol_kernel;
    }
    Py_INCREF(symbols);
    self->symbols = symbols;
    self->max_looks = max_looks;
    self->tones = tones;
    self->check = check;
    self->base_fold = base_fold;
    Py_INCREF(patterns);
    self->patterns = patterns;
    Py_INCREF(match_type);
    self->match_type = match_type;
    Py_INCREF(allowed);
    self->allowed = allowed;
    Py_INCREF(classify);
    self->classify = classify;
    Py_INCREF(normalize);
    self->normalize = normalize;
    self->configured = 1;
    Py_RETURN_NONE;
fail:  /* nothing is kept: a later configure() may try again */
    if (self->base.obj != NULL)
        PyBuffer_Release(&self->base);
    self->base.obj = NULL;
    PyMem_Free(wide);
    PyMem_Free(confusables);
    PyMem_Free(codes);
    return NULL;
}

static PyObject *
Kernel_matches(Kernel *self, PyObject *args)
{
    PyObject *text, *data, *hits;
    if (!PyArg_ParseTuple(args, "USO!:matches", &text, &data, &PyList_Type, &hits))
        return NULL;
    if (!self->configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() the kernel first");
        return NULL;
    }
    return resolve_hits(self, text, data, hits, emit_match, NULL);
}

/* WordMatcher.find in one call for the common text; None for one that needs Python's steps
 * (a second pass: leet symbols at letters, tone numbers; or a char past the table). */
/* variants.merge_matches: both passes' matches in order; where they overlap, the earlier
 * (then longer) wins, and of equal spans the first list's (a stable sort, as sorted()). */
static PyObject *
merge_matches(PyObject *first, PyObject *second)
{
    Py_ssize_t a = PyList_GET_SIZE(first), count = a + PyList_GET_SIZE(second);
    PyObject **items = PyMem_Malloc(sizeof(PyObject *) * (count + 1));
    Py_ssize_t *starts = PyMem_Malloc(sizeof(Py_ssize_t) * 2 * (count + 1));
    PyObject *merged = NULL;
    if (items == NULL || starts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t *ends = starts + count + 1;
    for (Py_ssize_t i = 0; i < count; i++) {  /* insertion sort: a handful of matches */
        PyObject *item = i < a ? PyList_GET_ITEM(first, i) : PyList_GET_ITEM(second, i - a);
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 0));
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 1));
        if (PyErr_Occurred())
            goto done;
        Py_ssize_t j = i;
        for (; j > 0 && (starts[j - 1] > start || (starts[j - 1] == start && ends[j - 1] < end)); j--) {
            items[j] = items[j - 1];
            starts[j] = starts[j - 1];
            ends[j] = ends[j - 1];
        }
        items[j] = item;
        starts[j] = start;
        ends[j] = end;
    }
    merged = PyList_New(0);
    if (merged == NULL)
        goto done;
    for (Py_ssize_t i = 0, kept = 0; i < count; i++) {
        if (kept && starts[i] < ends[kept - 1])
            continue;
        if (PyList_Append(merged, items[i]) < 0) {
            Py_CLEAR(merged);
            goto done;
        }
        starts[kept] = starts[i];  /* the kept ones, compacted: ends[kept - 1] is the last's */
        ends[kept++] = ends[i];
    }
done:
    PyMem_Free(items);
    PyMem_Free(starts);
    return merged;
}

/* Texts up to this many chars need no allocation for their offsets in find(). */
#define FIND_STACK_CHARS 256

/* Kernel.find's work (the text a str, the kernel configured). */
static PyObject *
find_text(Kernel *self, PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (length == 0)
        return PyList_New(0);
    /* One pass: the scans, the encoding and the offsets (a chat message fits the stack). */
    Py_ssize_t small[2 * (FIND_STACK_CHARS + 1)];
    Offsets map = {small, small + FIND_STACK_CHARS + 1, 0};
    if (length > FIND_STACK_CHARS && offsets_alloc(&map, length) < 0)
        return NULL;
    PyObject *found = NULL, *hits = NULL, *extra = NULL;
    PyObject *data = PyBytes_FromStringAndSize(NULL, length * self->width);
    if (data == NULL)
        goto done;
    unsigned char *bytes = (unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = encode_text(self, text, bytes, &map, ENCODE_SCANS);
    /* A leet symbol at a letter ("$cam"): this pass over the whole text, then the symbol
     * pass's, merged (WordMatcher._find); unless a tone number needs Python's steps too. */
    int symbol_pass = n == ENCODE_SYMBOL && self->symbol_kernel != NULL
                      && !(self->tones && tone_number_in(text));
    if (symbol_pass)
        n = encode_text(self, text, bytes, &map, 0);
    if (n < 0) {  /* a second pass, or a char the table cannot do: Python's steps */
        Py_INCREF(Py_None);
        found = Py_None;
        goto done;
    }
    if (_PyBytes_Resize(&data, n * self->width) < 0)
        goto done;
    hits = PyObject_CallMethodOneArg(self->automaton, search_name, data);
    if (hits == NULL)
        goto done;
    if (!PyList_Check(hits)) {
        PyErr_SetString(PyExc_TypeError, "the automaton must return a list");
        goto done;
    }
    found = PyList_GET_SIZE(hits) ? resolve_hits(self, text, data, hits, emit_match, &map)
                                  : PyList_New(0);
    if (found == NULL || !symbol_pass)
        goto done;
    extra = find_text(self->symbol_kernel, text);
    if (extra == NULL || extra == Py_None) {  /* an error, or Python's steps after all */
        Py_DECREF(found);
        found = extra;
        extra = NULL;
    } else if (PyList_GET_SIZE(extra)) {
        Py_SETREF(found, merge_matches(found, extra));
    }
done:
    Py_XDECREF(extra);
    Py_XDECREF(hits);
    Py_XDECREF(data);
    if (map.first != small)
        PyMem_Free(map.first);
    return found;
}

/* WordMatcher.find in one call, the symbol pass included; None for a text that needs
 * Python's steps (a tone number, or a char past the table). */
static PyObject *
Kernel_find(Kernel *self, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be str");
        return NULL;
    }
    if (!self->configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() the kernel first");
        return NULL;
    }
    return find_text(self, text);
}

typedef struct {
    Py_ssize_t start, end;
} Span;

static int
compare_spans(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* WordMatcher.mask for a list of this matcher's Match objects inside the text; None for
 * anything else (caller-made matches, offsets outside the text): Python's way then. */
static PyObject *
Kernel_mask(Kernel *self, PyObject *args)
{
    PyObject *text, *matches, *replacement;
    Py_UCS4 mask_char;
    if (!PyArg_ParseTuple(args, "UO!CO:mask", &text, &PyList_Type, &matches, &mask_char, &replacement))
        return NULL;
    if (!self->configured || (replacement != Py_None && !PyUnicode_Check(replacement)))
        Py_RETURN_NONE;
    Py_ssize_t count = PyList_GET_SIZE(matches), length = PyUnicode_GET_LENGTH(text);
    Span *spans = PyMem_Malloc(sizeof(Span) * (count + 1));
    if (spans == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *match = PyList_GET_ITEM(matches, i);
        if (Py_TYPE(match) != (PyTypeObject *)self->match_type
            || !PyLong_CheckExact(PyTuple_GET_ITEM(match, 0))
            || !PyLong_CheckExact(PyTuple_GET_ITEM(match, 1))) {
            PyMem_Free(spans);
            Py_RETURN_NONE;
        }
        spans[i].start = PyLong_AsSsize_t(PyTuple_GET_ITEM(match, 0));
        spans[i].end = PyLong_AsSsize_t(PyTuple_GET_ITEM(match, 1));
        if (PyErr_Occurred()) {
            PyErr_Clear();
            PyMem_Free(spans);
            Py_RETURN_NONE;
        }
        if (spans[i].start < 0 || spans[i].end < 0 || spans[i].start > length || spans[i].end > length) {
            PyMem_Free(spans);
            Py_RETURN_NONE;
        }
    }
    /* Equal spans are equal in every way that counts here, so an unstable sort is enough. */
    qsort(spans, count, sizeof(Span), compare_spans);
    /* Two passes: the length and widest char of the result (a str must be stored in the
     * narrowest kind that holds it, or it compares unequal), then the copy. */
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    Py_UCS4 limit = PyUnicode_MAX_CHAR_VALUE(text), widest = 0;
#define WIDEST_OF(from, to) \
    for (Py_ssize_t k = (from); k < (to) && widest < limit; k++) { \
        Py_UCS4 c = PyUnicode_READ(kind, chars, k); \
        if (c > widest) widest = c; \
    }
    Py_ssize_t size = 0, position = 0, pieces = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t start = spans[i].start > position ? spans[i].start : position;
        if (spans[i].end <= start)
            continue;
        pieces++;
        size += start - position;
        WIDEST_OF(position, start)
        if (replacement == Py_None) {
            size += spans[i].end - start;
            if (mask_char > widest)
                widest = mask_char;
        } else if (start == spans[i].start) {
            size += PyUnicode_GET_LENGTH(replacement);
            Py_ssize_t r = PyUnicode_GET_LENGTH(replacement);
            for (Py_ssize_t k = 0; k < r; k++) {
                Py_UCS4 c = PyUnicode_READ_CHAR(replacement, k);
                if (c > widest) widest = c;
            }
        }
        position = spans[i].end;
    }
    if (!pieces) {
        PyMem_Free(spans);
        Py_INCREF(text);
        return text;
    }
    size += length - position;
    WIDEST_OF(position, length)
#undef WIDEST_OF
    PyObject *out = PyUnicode_New(size, widest);
    if (out == NULL) {
        PyMem_Free(spans);
        return NULL;
    }
    Py_ssize_t at = 0;
    position = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t start = spans[i].start > position ? spans[i].start : position;
        if (spans[i].end <= start)
            continue;
        if (PyUnicode_CopyCharacters(out, at, text, position, start - position) < 0)
            goto fail;
        at += start - position;
        if (replacement == Py_None) {
            if (PyUnicode_Fill(out, at, spans[i].end - start, mask_char) < 0)
                goto fail;
            at += spans[i].end - start;
        } else if (start == spans[i].start) {
            if (PyUnicode_CopyCharacters(out, at, replacement, 0, PyUnicode_GET_LENGTH(replacement)) < 0)
                goto fail;
            at += PyUnicode_GET_LENGTH(replacement);
        }
        position = spans[i].end;
    }
    if (PyUnicode_CopyCharacters(out, at, text, position, length - position) < 0)
        goto fail;
    PyMem_Free(spans);
    return out;
fail:
    PyMem_Free(spans);
    Py_DECREF(out);
    return NULL;
}

static PyObject *
Kernel_configured(Kernel *self, void *closure)
{
    return PyBool_FromLong(self->configured);
}

static PyGetSetDef Kernel_getset[] = {
    {"configured", (getter)Kernel_configured, NULL, "True once configure() has run.", NULL},
    {NULL}
};

static PyMethodDef Kernel_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))Kernel_configure, METH_VARARGS | METH_KEYWORDS,
     "Set the parts matches() checks hits with (once; later calls change nothing)."},
    {"mask", (PyCFunction)Kernel_mask, METH_VARARGS,
     "WordMatcher.mask for this matcher's matches; None for others."},
    {"find", (PyCFunction)Kernel_find, METH_O,
     "WordMatcher.find for a text that needs no second pass; None for one that does."},
    {"matches", (PyCFunction)Kernel_matches, METH_VARARGS,
     "WordMatcher._resolve: the hits as checked Match objects."},
    {"encode", (PyCFunction)Kernel_encode, METH_O, "The compact search stream, or None."},
    {"resolve", (PyCFunction)Kernel_resolve, METH_VARARGS,
     "[(pattern index, first, last)] of the hits that pass the whole-word check."},
    {NULL}
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rules.text._wordkernel.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled hot path of one WordMatcher.",
    .tp_methods = Kernel_methods,
    .tp_getset = Kernel_getset,
    .tp_new = Kernel_new,
};

static PyObject *
has_tone_number(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be str");
        return NULL;
    }
    return PyBool_FromLong(tone_number_in(text));
}

static PyObject *
symbol_at_letter(PyObject *module, PyObject *args)
{
    PyObject *text, *symbols;
    Py_ssize_t max_looks;
    if (!PyArg_ParseTuple(args, "UUn:symbol_at_letter", &text, &symbols, &max_looks))
        return NULL;
    return PyBool_FromLong(symbol_touches_letter(text, symbols, max_looks));
}

static PyMethodDef module_methods[] = {
    {"has_tone_number", has_tone_number, METH_O, "A digit 1-5 right after an ASCII letter."},
    {"symbol_at_letter", symbol_at_letter, METH_VARARGS,
     "One of these one-char symbols touches an ASCII letter or digit."},
    {NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_wordkernel", "The word engine's compiled hot path.", -1, module_methods,
};

PyMODINIT_FUNC
PyInit__wordkernel(void)
{
    if (PyType_Ready(&KernelType) < 0)
        return NULL;
    PyObject *unicodedata = PyImport_ImportModule("unicodedata");
    if (unicodedata == NULL)
        return NULL;
    category_func = PyObject_GetAttrString(unicodedata, "category");
    Py_DECREF(unicodedata);
    if (category_func == NULL)
        return NULL;
    search_name = PyUnicode_InternFromString("find_matches_as_indexes");
    if (search_name == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(module, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
