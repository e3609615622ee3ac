/* pixelmatch 7.2.0's pixel scan, compiled: the same decisions as compare/imaging/pixelmatch.py's
 * vectorised scan, pixel by pixel in one pass, with the GIL released.
 *
 * Reference: github.com/mapbox/pixelmatch, release v7.2.0, index.js (colorDelta, antialiased,
 * brightnessDelta, hasManySiblings). The arithmetic is pixelmatch's, in doubles and in its order;
 * built with floating-point contraction off, so no fused multiply-add changes a rounding.
 *
 * Rows of the overlap whose bytes are equal are skipped with one memcmp each; in the other rows
 * only pixels whose packed values differ are tested, as in pixelmatch's own loop. Only the
 * overlap of the two originals is scanned here; the caller marks the canvas outside it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *img; /* RGBA bytes of the canvas tested */
    const uint8_t *a;   /* the two canvases, in pixelmatch's order */
    const uint8_t *b;
    Py_ssize_t width, height;
    int checkerboard;
} Canvas;

/* The packed pixel at byte p (any alignment). */
static inline uint32_t load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The background's red, green and blue behind byte offset k (pixelmatch's checkerboard, or
 * white). */
static inline void background(Py_ssize_t k, int checkerboard, double *rb, double *gb, double *bb) {
    if (!checkerboard) {
        *rb = *gb = *bb = 255.0;
        return;
    }
    *rb = 48.0 + 159.0 * (double)(k % 2);
    *gb = 48.0 + 159.0 * (double)((int64_t)((double)k / 1.618033988749895) % 2);
    *bb = 48.0 + 159.0 * (double)((int64_t)((double)k / 2.618033988749895) % 2);
}

/* Channel differences of two RGBA pixels, blended over the background at offset k when either
 * is not opaque (pixelmatch's colorDelta and brightnessDelta). */
static inline void channel_deltas(const uint8_t *p, const uint8_t *q, Py_ssize_t k, int checkerboard,
                                  double *dr, double *dg, double *db) {
    int r1 = p[0], g1 = p[1], b1 = p[2], a1 = p[3];
    int r2 = q[0], g2 = q[1], b2 = q[2], a2 = q[3];
    if (a1 < 255 || a2 < 255) {
        double rb, gb, bb;
        int da = a1 - a2;
        background(k, checkerboard, &rb, &gb, &bb);
        *dr = ((double)(r1 * a1 - r2 * a2) - rb * da) / 255.0;
        *dg = ((double)(g1 * a1 - g2 * a2) - gb * da) / 255.0;
        *db = ((double)(b1 * a1 - b2 * a2) - bb * da) / 255.0;
    } else {
        *dr = (double)(r1 - r2);
        *dg = (double)(g1 - g2);
        *db = (double)(b1 - b2);
    }
}

static inline double brightness(double dr, double dg, double db) {
    return dr * 0.29889531 + dg * 0.58662247 + db * 0.11448223;
}

/* Squared YIQ distance of two differing pixels (unsigned). */
static inline double yiq_delta(const uint8_t *p, const uint8_t *q, Py_ssize_t k, int checkerboard) {
    double dr, dg, db;
    channel_deltas(p, q, k, checkerboard, &dr, &dg, &db);
    double y = brightness(dr, dg, db);
    double i = dr * 0.59597799 - dg * 0.27417610 - db * 0.32180189;
    double q_ = dr * 0.21147017 - dg * 0.52261711 + db * 0.31114694;
    return 0.5053 * y * y + 0.299 * i * i + 0.1957 * q_ * q_;
}

/* Whether the pixel (x1, y1) has 3+ neighbours with its packed value; the border counts as one. */
static int many_siblings(const uint8_t *img, Py_ssize_t x1, Py_ssize_t y1, Py_ssize_t width,
                         Py_ssize_t height) {
    Py_ssize_t x0 = x1 > 0 ? x1 - 1 : 0, y0 = y1 > 0 ? y1 - 1 : 0;
    Py_ssize_t x2 = x1 + 1 < width ? x1 + 1 : width - 1, y2 = y1 + 1 < height ? y1 + 1 : height - 1;
    uint32_t value = load32(img + (y1 * width + x1) * 4);
    int zeroes = (x1 == x0 || x1 == x2 || y1 == y0 || y1 == y2) ? 1 : 0;
    for (Py_ssize_t x = x0; x <= x2; x++) {
        for (Py_ssize_t y = y0; y <= y2; y++) {
            if (x == x1 && y == y1) continue;
            zeroes += value == load32(img + (y * width + x) * 4);
            if (zeroes > 2) return 1;
        }
    }
    return 0;
}

/* pixelmatch's antialiased(): whether (x1, y1) of c->img looks like anti-aliasing. */
static int antialiased(const Canvas *c, Py_ssize_t x1, Py_ssize_t y1) {
    Py_ssize_t width = c->width, height = c->height;
    Py_ssize_t x0 = x1 > 0 ? x1 - 1 : 0, y0 = y1 > 0 ? y1 - 1 : 0;
    Py_ssize_t x2 = x1 + 1 < width ? x1 + 1 : width - 1, y2 = y1 + 1 < height ? y1 + 1 : height - 1;
    Py_ssize_t k = (y1 * width + x1) * 4;
    const uint8_t *centre = c->img + k;
    uint32_t centre_value = load32(centre);
    int zeroes = (x1 == x0 || x1 == x2 || y1 == y0 || y1 == y2) ? 1 : 0;
    double min = 0.0, max = 0.0;
    Py_ssize_t min_x = 0, min_y = 0, max_x = 0, max_y = 0;
    for (Py_ssize_t x = x0; x <= x2; x++) {
        for (Py_ssize_t y = y0; y <= y2; y++) {
            if (x == x1 && y == y1) continue;
            const uint8_t *other = c->img + (y * width + x) * 4;
            double delta = 0.0;
            if (load32(other) != centre_value) {
                double dr, dg, db;
                channel_deltas(centre, other, k, c->checkerboard, &dr, &dg, &db);
                delta = brightness(dr, dg, db);
            }
            if (delta == 0.0) {
                if (++zeroes > 2) return 0;
            } else if (delta < min) {
                min = delta;
                min_x = x;
                min_y = y;
            } else if (delta > max) {
                max = delta;
                max_x = x;
                max_y = y;
            }
        }
    }
    if (min == 0.0 || max == 0.0) return 0;
    return (many_siblings(c->a, min_x, min_y, width, height) &&
            many_siblings(c->b, min_x, min_y, width, height)) ||
           (many_siblings(c->a, max_x, max_y, width, height) &&
            many_siblings(c->b, max_x, max_y, width, height));
}

typedef struct {
    Py_ssize_t changed, antialiased;
    Py_ssize_t x0, y0, x1, y1; /* bounds of the changed pixels, x1 < 0 when there are none */
} Totals;

static void scan_overlap(const uint8_t *a, const uint8_t *b, uint8_t *mask, const uint8_t *ignore,
                         Py_ssize_t width, Py_ssize_t height, Py_ssize_t ow, Py_ssize_t oh,
                         double max_delta, int antialiasing, int checkerboard, Totals *t) {
    Canvas in_a = {a, a, b, width, height, checkerboard};
    Canvas in_b = {b, b, a, width, height, checkerboard};
    for (Py_ssize_t y = 0; y < oh; y++) {
        Py_ssize_t row = y * width;
        if (memcmp(a + row * 4, b + row * 4, (size_t)ow * 4) == 0) continue;
        for (Py_ssize_t x = 0; x < ow; x++) {
            Py_ssize_t i = row + x;
            if (load32(a + i * 4) == load32(b + i * 4) || (ignore != NULL && ignore[i])) continue;
            if (!(yiq_delta(a + i * 4, b + i * 4, i * 4, checkerboard) > max_delta)) continue;
            if (antialiasing && (antialiased(&in_a, x, y) || antialiased(&in_b, x, y))) {
                t->antialiased++;
                continue;
            }
            mask[i] = 1;
            t->changed++;
            if (t->x1 < 0) {
                t->x0 = x;
                t->y0 = y;
                t->x1 = x + 1;
            } else {
                if (x < t->x0) t->x0 = x;
                if (x + 1 > t->x1) t->x1 = x + 1;
            }
            t->y1 = y + 1;
        }
    }
}

static int check_length(const Py_buffer *view, Py_ssize_t expected, const char *name) {
    if (view->len != expected) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, expected %zd", name, view->len, expected);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(scan_doc,
"scan(a, b, mask, ignore, width, height, overlap_width, overlap_height, max_delta, antialiasing,\n"
"     checkerboard) -> (changed, antialiased, bounds)\n"
"\n"
"Scan the top-left overlap of two RGBA canvases (width x height, 4 bytes a pixel, C order) as\n"
"pixelmatch 7.2.0 does, setting mask[i] (one byte a pixel) to 1 for each changed pixel.\n"
"ignore is None or one byte a pixel, non-zero where pixels never count. Returns how many\n"
"pixels changed, how many over the threshold were excluded as anti-aliasing, and the changed\n"
"pixels' bounds (x0, y0, x1, y1; exclusive ends) or None.");

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer a, b, mask, ignore = {0};
    PyObject *ignore_obj;
    Py_ssize_t width, height, ow, oh;
    double max_delta;
    int antialiasing, checkerboard;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*w*Onnnndpp", &a, &b, &mask, &ignore_obj, &width, &height, &ow,
                          &oh, &max_delta, &antialiasing, &checkerboard))
        return NULL;
    PyObject *result = NULL;
    int have_ignore = ignore_obj != Py_None;
    if (have_ignore && PyObject_GetBuffer(ignore_obj, &ignore, PyBUF_SIMPLE) < 0) goto done;
    if (width < 0 || height < 0 || ow < 0 || oh < 0 || ow > width || oh > height ||
        (width > 0 && height > PY_SSIZE_T_MAX / 4 / width)) {
        PyErr_SetString(PyExc_ValueError, "bad canvas or overlap size");
        goto done;
    }
    Py_ssize_t pixels = width * height;
    if (!check_length(&a, pixels * 4, "a") || !check_length(&b, pixels * 4, "b") ||
        !check_length(&mask, pixels, "mask") || (have_ignore && !check_length(&ignore, pixels, "ignore")))
        goto done;
    Totals t = {0, 0, 0, 0, -1, -1};
    Py_BEGIN_ALLOW_THREADS
    scan_overlap(a.buf, b.buf, mask.buf, have_ignore ? ignore.buf : NULL, width, height, ow, oh,
                 max_delta, antialiasing, checkerboard, &t);
    Py_END_ALLOW_THREADS
    if (t.x1 < 0)
        result = Py_BuildValue("nnO", t.changed, t.antialiased, Py_None);
    else
        result = Py_BuildValue("nn(nnnn)", t.changed, t.antialiased, t.x0, t.y0, t.x1, t.y1);
done:
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&mask);
    if (have_ignore && ignore.obj != NULL) PyBuffer_Release(&ignore);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pixelmatch",
    "pixelmatch 7.2.0's pixel scan, compiled (see compare.imaging.pixelmatch).", 0, methods, slots,
    NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pixelmatch(void) { return PyModuleDef_Init(&module); }
