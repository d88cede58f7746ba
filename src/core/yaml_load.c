/* yaml_load.c — YAML text to a positioned value tree, with hard limits.
 *
 * Built on libyaml's event parser. Anchors and aliases are supported by copying
 * the anchored subtree; copies count against RECIPE_MAX_NODES, so an alias bomb
 * stops at the limit instead of exhausting memory. */
#include "core/recipe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

struct anchor {
    char *name;
    struct sv *node;
    bool done; /* false while the anchored collection is still open */
};

struct frame {
    struct sv *node;
    char *key; /* pending map key, NULL when the next scalar is a key */
    struct sv_pos kpos;
    size_t anchor; /* index + 1 into anchors, 0 = none */
};

struct loader {
    const char *file; /* interned */
    unsigned col_off; /* added to columns on line 1 (--set values) */
    struct diags *d;
    struct frame stack[RECIPE_MAX_DEPTH + 1];
    size_t depth;
    struct sv *root;
    struct anchor *anchors;
    size_t nanchors, anchors_cap;
    size_t nodes;
    bool failed; /* an error was reported; keep going only for non-fatal ones */
};

static struct sv_pos mark_pos(const struct loader *l, yaml_mark_t m)
{
    unsigned col = (unsigned)m.column + 1;
    if (m.line == 0)
        col += l->col_off;
    return (struct sv_pos){l->file, (unsigned)m.line + 1, col};
}

static const char *kind_word(enum sv_kind k)
{
    switch (k) {
    case SV_NULL:
        return "null";
    case SV_SCALAR:
        return "a scalar";
    case SV_SEQ:
        return "a list";
    case SV_MAP:
        return "a map";
    }
    return "?";
}

/* Node count and height of a subtree, both capped to keep this cheap. */
static void measure(const struct sv *v, size_t *count, size_t *height, size_t depth)
{
    if (*count > RECIPE_MAX_NODES)
        return;
    (*count)++;
    if (depth > *height)
        *height = depth;
    for (size_t i = 0; i < v->n; i++)
        measure(v->kids[i], count, height, depth + 1);
}

static int count_node(struct loader *l, yaml_mark_t m, size_t n)
{
    l->nodes += n;
    if (l->nodes <= RECIPE_MAX_NODES)
        return 0;
    diags_add(l->d, mark_pos(l, m), "", NULL, "document has more than %d nodes (the limit)",
              RECIPE_MAX_NODES);
    return -EINVAL;
}

static void add_anchor(struct loader *l, const yaml_char_t *name, struct sv *node, bool done)
{
    if (!name)
        return;
    if (l->nanchors == l->anchors_cap) {
        l->anchors_cap = l->anchors_cap ? l->anchors_cap * 2 : 8;
        l->anchors = xrealloc(l->anchors, l->anchors_cap * sizeof(*l->anchors));
    }
    l->anchors[l->nanchors++] =
        (struct anchor){.name = xstrdup((const char *)name), .node = node, .done = done};
}

/* Adds a finished node to the open collection on top of the stack (or makes it the root). */
static int attach(struct loader *l, struct sv *node)
{
    if (l->depth == 0) {
        l->root = node;
        return 0;
    }
    struct frame *f = &l->stack[l->depth - 1];
    if (f->node->kind == SV_SEQ) {
        sv_append(f->node, NULL, node);
        return 0;
    }
    if (!f->key) {
        if (node->kind != SV_SCALAR) {
            diags_add(l->d, node->pos, "", NULL, "map keys must be strings, got %s",
                      kind_word(node->kind));
            sv_free(node);
            return -EINVAL;
        }
        f->key = node->str;
        node->str = NULL;
        f->kpos = node->pos;
        sv_free(node);
        return 0;
    }
    node->kpos = f->kpos;
    sv_append(f->node, f->key, node);
    free(f->key);
    f->key = NULL;
    return 0;
}

static bool is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int on_scalar(struct loader *l, const yaml_event_t *e)
{
    if (count_node(l, e->start_mark, 1) < 0)
        return -EINVAL;
    const char *text = (const char *)e->data.scalar.value;
    const char *tag = (const char *)e->data.scalar.tag;
    bool plain = e->data.scalar.plain_implicit && e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    bool str_tag = tag && !strcmp(tag, YAML_STR_TAG);
    struct sv_pos pos = mark_pos(l, e->start_mark);
    struct sv *v;
    if (plain && !str_tag && is_null_text(text)) {
        v = sv_new(SV_NULL, pos);
    } else {
        v = sv_new_scalar(text, pos);
        v->quoted = !plain || str_tag;
    }
    add_anchor(l, e->data.scalar.anchor, v, true);
    return attach(l, v);
}

static int on_start(struct loader *l, const yaml_event_t *e, enum sv_kind kind)
{
    struct sv_pos pos = mark_pos(l, e->start_mark);
    if (l->depth > 0) {
        struct frame *top = &l->stack[l->depth - 1];
        if (top->node->kind == SV_MAP && !top->key) {
            diags_add(l->d, pos, "", NULL, "map keys must be strings, got %s", kind_word(kind));
            return -EINVAL;
        }
    }
    if (l->depth >= RECIPE_MAX_DEPTH) {
        diags_add(l->d, pos, "", NULL, "document is nested deeper than %d levels (the limit)",
                  RECIPE_MAX_DEPTH);
        return -EINVAL;
    }
    if (count_node(l, e->start_mark, 1) < 0)
        return -EINVAL;
    const yaml_char_t *anchor =
        kind == SV_MAP ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
    struct sv *v = sv_new(kind, pos);
    add_anchor(l, anchor, v, false);
    l->stack[l->depth++] = (struct frame){.node = v, .anchor = anchor ? l->nanchors : 0};
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const struct sv *x = *(struct sv *const *)a, *y = *(struct sv *const *)b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->kpos.line != y->kpos.line)
        return x->kpos.line < y->kpos.line ? -1 : 1;
    return x->kpos.col < y->kpos.col ? -1 : x->kpos.col > y->kpos.col;
}

/* Reports every repeated key at its later occurrence (sorting keeps this O(n log n)). */
static void check_duplicates(struct loader *l, const struct sv *map)
{
    if (map->n < 2)
        return;
    struct sv **v = xmalloc(map->n * sizeof(*v));
    memcpy(v, map->kids, map->n * sizeof(*v));
    qsort(v, map->n, sizeof(*v), key_cmp);
    for (size_t i = 1; i < map->n; i++) {
        if (strcmp(v[i - 1]->key, v[i]->key) != 0)
            continue;
        diags_add(l->d, v[i]->kpos, "", NULL, "duplicate key '%s' (first at line %u)", v[i]->key,
                  v[i - 1]->kpos.line);
        l->failed = true;
    }
    free(v);
}

static int on_end(struct loader *l)
{
    struct frame *f = &l->stack[--l->depth];
    struct sv *v = f->node;
    if (f->anchor)
        l->anchors[f->anchor - 1].done = true;
    if (v->kind == SV_MAP)
        check_duplicates(l, v);
    free(f->key);
    return attach(l, v);
}

static int on_alias(struct loader *l, const yaml_event_t *e)
{
    const char *name = (const char *)e->data.alias.anchor;
    struct sv_pos pos = mark_pos(l, e->start_mark);
    const struct anchor *a = NULL;
    for (size_t i = l->nanchors; i-- > 0;) {
        if (strcmp(l->anchors[i].name, name) == 0) {
            a = &l->anchors[i];
            break;
        }
    }
    if (!a || !a->done) {
        diags_add(l->d, pos, "", NULL,
                  a ? "alias '*%s' refers to a node that contains it"
                    : "alias '*%s' refers to an unknown anchor",
                  name);
        return -EINVAL;
    }
    size_t count = 0, height = 0;
    measure(a->node, &count, &height, 0);
    if (count_node(l, e->start_mark, count) < 0)
        return -EINVAL;
    if (l->depth + height >= RECIPE_MAX_DEPTH) {
        diags_add(l->d, pos, "", NULL, "document is nested deeper than %d levels (the limit)",
                  RECIPE_MAX_DEPTH);
        return -EINVAL;
    }
    return attach(l, sv_clone(a->node));
}

static void yaml_error(struct loader *l, const yaml_parser_t *p, const char *data, size_t len)
{
    struct sv_pos pos = mark_pos(l, p->problem_mark);
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors carry a byte offset, not a mark. */
        pos = (struct sv_pos){l->file, 1, 1};
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (data[i] == '\n')
                pos.line++, pos.col = 1;
            else if (((unsigned char)data[i] & 0xc0) != 0x80)
                pos.col++;
        }
        pos.col += pos.line == 1 ? l->col_off : 0;
        diags_add(l->d, pos, "", NULL, "invalid text: %s (the file must be UTF-8)",
                  p->problem ? p->problem : "unreadable input");
        return;
    }
    if (p->context)
        diags_add(l->d, pos, "", NULL, "invalid YAML: %s (%s at line %zu, column %zu)",
                  p->problem ? p->problem : "syntax error", p->context, p->context_mark.line + 1,
                  p->context_mark.column + 1);
    else
        diags_add(l->d, pos, "", NULL, "invalid YAML: %s",
                  p->problem ? p->problem : "syntax error");
}

/* Handles one event; 1 when the stream is over, 0 to go on, -EINVAL to stop. */
static int on_event(struct loader *l, const yaml_event_t *e, int *docs)
{
    switch (e->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1) {
            diags_add(l->d, mark_pos(l, e->start_mark), "", NULL,
                      "more than one YAML document in one file (one recipe per file)");
            return -EINVAL;
        }
        return 0;
    case YAML_SCALAR_EVENT:
        return on_scalar(l, e);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(l, e, SV_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(l, e, SV_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(l);
    case YAML_ALIAS_EVENT:
        return on_alias(l, e);
    default:
        return 0;
    }
}

static int check_nul(struct loader *l, const char *data, size_t len)
{
    const char *z = memchr(data, '\0', len);
    if (!z)
        return 0;
    struct sv_pos pos = {l->file, 1, 1};
    for (const char *p = data; p < z; p++) {
        if (*p == '\n')
            pos.line++, pos.col = 1;
        else
            pos.col++;
    }
    diags_add(l->d, pos, "", NULL, "file contains a NUL byte (binary data, not a YAML recipe)");
    return -EINVAL;
}

static void loader_free(struct loader *l)
{
    while (l->depth > 0) {
        struct frame *f = &l->stack[--l->depth];
        free(f->key);
        sv_free(f->node);
    }
    for (size_t i = 0; i < l->nanchors; i++)
        free(l->anchors[i].name);
    free(l->anchors);
    sv_free(l->root);
}

static int parse_events(struct loader *l, const char *data, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return -ENOMEM;
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    int r = 0, docs = 0;
    while (r == 0) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            yaml_error(l, &p, data, len);
            r = -EINVAL;
            break;
        }
        r = on_event(l, &e, &docs);
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&p);
    return r < 0 ? r : 0;
}

int yaml_load_value(const char *name, const char *data, size_t len, unsigned col_off,
                    struct sv **out, struct diags *d)
{
    struct loader l = {.file = sv_intern(name), .col_off = col_off, .d = d};
    int r = check_nul(&l, data, len);
    if (r == 0)
        r = parse_events(&l, data, len);
    if (r == 0 && l.failed)
        r = -EINVAL;
    if (r == 0 && !l.root)
        l.root = sv_new(SV_NULL, (struct sv_pos){l.file, 1, 1 + col_off});
    if (r == 0) {
        *out = l.root;
        l.root = NULL;
    }
    loader_free(&l);
    return r;
}

int recipe_load_buffer(const char *name, const char *data, size_t len, struct sv **doc,
                       struct diags *d)
{
    struct sv *v = NULL;
    const char *file = sv_intern(name);
    if (len > RECIPE_MAX_BYTES) {
        diags_add(d, (struct sv_pos){file, 1, 1}, "", NULL, "file is larger than 1 MiB");
        return -EINVAL;
    }
    int r = yaml_load_value(name, data, len, 0, &v, d);
    if (r < 0)
        return r;
    if (v->kind == SV_NULL) {
        diags_add(d, (struct sv_pos){file, 1, 1}, "", NULL,
                  "empty recipe: expected a map with 'kind:'");
        r = -EINVAL;
    } else if (v->kind != SV_MAP) {
        diags_add(d, v->pos, "", NULL, "expected a map with 'kind:' at the top level, got %s",
                  kind_word(v->kind));
        r = -EINVAL;
    }
    if (r < 0) {
        sv_free(v);
        return r;
    }
    *doc = v;
    return 0;
}

int recipe_load_file(const char *path, struct sv **doc, struct diags *d)
{
    struct sv_pos pos = {sv_intern(path), 0, 0};
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int r = stat(path, &st) < 0 ? -errno : 0;
    if (r == 0 && !S_ISREG(st.st_mode))
        r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    if (r == 0 && st.st_size > (off_t)RECIPE_MAX_BYTES)
        r = -EFBIG;
    if (r == 0)
        r = read_file(path, RECIPE_MAX_BYTES, &data, &len);
    if (r == -EFBIG) {
        pos.line = pos.col = 1;
        diags_add(d, pos, "", NULL, "file is larger than 1 MiB");
        return -EINVAL;
    }
    if (r < 0) {
        diags_add(d, pos, "", NULL, "cannot read the recipe: %s",
                  r == -EINVAL ? "not a regular file" : strerror(-r));
        return r;
    }
    r = recipe_load_buffer(path, data, len, doc, d);
    free(data);
    return r;
}
