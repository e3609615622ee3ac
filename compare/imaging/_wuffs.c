/* PNG decoding into memory the caller owns, by Wuffs (memory-safe, github.com/google/wuffs): no
 * zero fill and no copy, the GIL released while it decodes.
 *
 * Built over the Wuffs C file that pywuffs 2.0.1 ships (setup.py fetches its source release and
 * checks its sha256), with only the modules PNG needs. Decodes as pywuffs' default
 * wuffs_aux::DecodeImage does for PNG: checksums ignored, pixels as RGBA (not premultiplied),
 * the frame written over the whole buffer (blend "src"). The caller gives the size it read from
 * the header; a PNG of another size, or one Wuffs refuses, is an error the caller handles.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define WUFFS_IMPLEMENTATION
#define WUFFS_CONFIG__MODULES
#define WUFFS_CONFIG__MODULE__BASE
#define WUFFS_CONFIG__MODULE__ADLER32
#define WUFFS_CONFIG__MODULE__CRC32
#define WUFFS_CONFIG__MODULE__DEFLATE
#define WUFFS_CONFIG__MODULE__ZLIB
#define WUFFS_CONFIG__MODULE__PNG
#include "wuffs-unsupported-snapshot.c"

/* Decode the PNG in src into dst (width * height * 4 bytes); NULL on success, else why not. */
static const char *decode_into(uint8_t *src, size_t src_len, uint8_t *dst, uint32_t width,
                               uint32_t height) {
    const char *error = NULL;
    uint8_t *work = NULL;
    size_t size = sizeof__wuffs_png__decoder();
    wuffs_png__decoder *decoder = malloc(size);
    if (decoder == NULL) return "out of memory";
    /* Zeroed whole, as wuffs_png__decoder__alloc's calloc does for DecodeImage: Wuffs strives
     * never to read an internal buffer before writing it, but does not prove it
     * (doc/note/initialization.md), and pixels from untrusted PNGs end up in reports. */
    wuffs_base__status status =
        wuffs_png__decoder__initialize(decoder, size, WUFFS_VERSION, WUFFS_INITIALIZE__DEFAULT_OPTIONS);
    if (!wuffs_base__status__is_ok(&status)) {
        error = wuffs_base__status__message(&status);
        goto done;
    }
    wuffs_png__decoder__set_quirk(decoder, WUFFS_BASE__QUIRK_IGNORE_CHECKSUM, 1);

    wuffs_base__io_buffer input = wuffs_base__ptr_u8__reader(src, src_len, true);
    wuffs_base__image_config config;
    status = wuffs_png__decoder__decode_image_config(decoder, &config, &input);
    if (!wuffs_base__status__is_ok(&status)) {
        error = wuffs_base__status__message(&status);
        goto done;
    }
    if (wuffs_base__pixel_config__width(&config.pixcfg) != width ||
        wuffs_base__pixel_config__height(&config.pixcfg) != height) {
        error = "size differs from the header read";
        goto done;
    }
    wuffs_base__pixel_config__set(&config.pixcfg, WUFFS_BASE__PIXEL_FORMAT__RGBA_NONPREMUL,
                                  WUFFS_BASE__PIXEL_SUBSAMPLING__NONE, width, height);
    wuffs_base__pixel_buffer pixels;
    status = wuffs_base__pixel_buffer__set_from_slice(
        &pixels, &config.pixcfg, wuffs_base__make_slice_u8(dst, (size_t)width * height * 4));
    if (!wuffs_base__status__is_ok(&status)) {
        error = wuffs_base__status__message(&status);
        goto done;
    }
    uint64_t work_len = wuffs_png__decoder__workbuf_len(decoder).max_incl;
    if (work_len > SIZE_MAX || (work_len > 0 && (work = malloc((size_t)work_len)) == NULL)) {
        error = "out of memory";
        goto done;
    }
    wuffs_base__frame_config frame = wuffs_base__null_frame_config();
    status = wuffs_png__decoder__decode_frame_config(decoder, &frame, &input);
    if (!wuffs_base__status__is_ok(&status)) {
        error = wuffs_base__status__message(&status);
        goto done;
    }
    status = wuffs_png__decoder__decode_frame(decoder, &pixels, &input, WUFFS_BASE__PIXEL_BLEND__SRC,
                                              wuffs_base__make_slice_u8(work, (size_t)work_len), NULL);
    if (!wuffs_base__status__is_ok(&status)) error = wuffs_base__status__message(&status);
done:
    free(work);
    free(decoder);
    return error;
}

PyDoc_STRVAR(decode_doc,
"decode(png, out, width, height) -> None | str\n"
"\n"
"Decode the PNG bytes png into out, a writable buffer of width * height * 4 bytes (RGBA, not\n"
"premultiplied). Returns None when every pixel was written, otherwise Wuffs' reason (out then\n"
"holds nothing usable), also when the PNG's size is not width x height.");

static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    Py_ssize_t width, height;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*nn", &src, &dst, &width, &height)) return NULL;
    PyObject *result = NULL;
    if (width <= 0 || height <= 0 || width > UINT32_MAX || height > UINT32_MAX ||
        width > PY_SSIZE_T_MAX / 4 / height || dst.len != width * height * 4) {
        PyErr_SetString(PyExc_ValueError, "out must hold width * height * 4 bytes");
        goto done;
    }
    const char *error;
    Py_BEGIN_ALLOW_THREADS
    error = decode_into(src.buf, (size_t)src.len, dst.buf, (uint32_t)width, (uint32_t)height);
    Py_END_ALLOW_THREADS
    if (error == NULL) {
        result = Py_NewRef(Py_None);
    } else {
        result = PyUnicode_FromString(error);
    }
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
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
    PyModuleDef_HEAD_INIT, "_wuffs",
    "PNG decoding by Wuffs into a caller's buffer (see compare.imaging.png).", 0, methods, slots,
    NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__wuffs(void) { return PyModuleDef_Init(&module); }
