/*
 * token_suite._speedups: byte framing of JWS compact tokens, in C.
 *
 * Why C (docs/architecture.md, "Règles du code" 5; issue 3's bench goals): next to an OpenSSL
 * P-256 operation, the many small Python steps that split a token, check and
 * decode its base64url segments and move an ECDSA signature between JOSE
 * R||S and DER cost a third of the signature itself. This module does that
 * framing only: no cryptography, no JSON, no policy, no claim names. Signatures
 * are made and checked by `cryptography` (OpenSSL; es256_compact/es256_check only
 * frame its calls), JSON is read by orjson or the standard library, and every
 * rule (audience, times, claim types) and the identity vector's fields stay in
 * Python (token_suite.jwt, token_suite._claims).
 *
 * token_suite._jws holds the pure-Python reference of each function; the tests
 * run both on the same inputs (hypothesis) and require the same result or the
 * same error message, and _jws uses the Python one when this module is absent.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static const char B64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for the base64url alphabet, 64 for '.', 255 for anything else. */
static unsigned char DECODE[256];

static const char MSG_FORM[] = "not a JWS compact serialisation";
static const char MSG_LENGTH[] = "bad base64url length";
static const char MSG_CANONICAL[] = "non-canonical base64url";

/*
 * Decode `len` base64url characters (alphabet already checked) into `out`.
 * Returns the decoded length, or -1 with ValueError set: a length of 1 mod 4
 * cannot be base64; the unused low bits of the last character must be zero,
 * so that each value has exactly one spelling.
 */
static Py_ssize_t
decode_segment(const unsigned char *in, Py_ssize_t len, unsigned char *out)
{
    Py_ssize_t full = len / 4 * 4, i, o = 0;
    unsigned int v;

    if (len % 4 == 1) {
        PyErr_SetString(PyExc_ValueError, MSG_LENGTH);
        return -1;
    }
    if (len % 4 == 2 && (DECODE[in[len - 1]] & 0x0F)) {
        PyErr_SetString(PyExc_ValueError, MSG_CANONICAL);
        return -1;
    }
    if (len % 4 == 3 && (DECODE[in[len - 1]] & 0x03)) {
        PyErr_SetString(PyExc_ValueError, MSG_CANONICAL);
        return -1;
    }
    for (i = 0; i < full; i += 4) {
        v = (DECODE[in[i]] << 18) | (DECODE[in[i + 1]] << 12) | (DECODE[in[i + 2]] << 6)
            | DECODE[in[i + 3]];
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (len - full >= 2) {
        v = (DECODE[in[full]] << 18) | (DECODE[in[full + 1]] << 12);
        if (len - full == 3) {
            v |= DECODE[in[full + 2]] << 6;
        }
        out[o++] = (unsigned char)(v >> 16);
        if (len - full == 3) {
            out[o++] = (unsigned char)(v >> 8);
        }
    }
    return o;
}

static PyObject *
decoded(const unsigned char *in, Py_ssize_t len)
{
    /* 3 bytes per 4 characters, 1 for 2 left over, 2 for 3 (1 left over fails below) */
    PyObject *result = PyBytes_FromStringAndSize(NULL, len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0));

    if (result == NULL) {
        return NULL;
    }
    if (decode_segment(in, len, (unsigned char *)PyBytes_AS_STRING(result)) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

PyDoc_STRVAR(split_doc,
"split(token: bytes) -> (header_segment, payload, signing_input, signature)\n\n"
"Exactly three base64url segments joined by two dots, or ValueError; the\n"
"payload and signature decoded (canonical base64url, no padding), the header\n"
"segment returned as it is (its decoding is cached by the caller).");

static PyObject *
split(PyObject *module, PyObject *arg)
{
    const unsigned char *in;
    Py_ssize_t len, i, dots[2], ndots = 0;
    unsigned char c, bad = 0;
    PyObject *header = NULL, *payload = NULL, *signing_input = NULL, *signature = NULL;
    PyObject *result;

    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "split() needs bytes");
        return NULL;
    }
    in = (const unsigned char *)PyBytes_AS_STRING(arg);
    len = PyBytes_GET_SIZE(arg);
    for (i = 0; i < len; i++) {
        c = DECODE[in[i]];
        if (c == 64) {
            if (ndots == 2) {
                bad = 1;
                break;
            }
            dots[ndots++] = i;
        }
        bad |= c & 0x80;
    }
    if (bad || ndots != 2) {
        PyErr_SetString(PyExc_ValueError, MSG_FORM);
        return NULL;
    }
    header = PyBytes_FromStringAndSize((const char *)in, dots[0]);
    if (header == NULL) {
        goto fail;
    }
    payload = decoded(in + dots[0] + 1, dots[1] - dots[0] - 1);
    if (payload == NULL) {
        goto fail;
    }
    signing_input = PyBytes_FromStringAndSize((const char *)in, dots[1]);
    if (signing_input == NULL) {
        goto fail;
    }
    signature = decoded(in + dots[1] + 1, len - dots[1] - 1);
    if (signature == NULL) {
        goto fail;
    }
    result = PyTuple_New(4);
    if (result == NULL) {
        goto fail;
    }
    PyTuple_SET_ITEM(result, 0, header);  /* steals each reference */
    PyTuple_SET_ITEM(result, 1, payload);
    PyTuple_SET_ITEM(result, 2, signing_input);
    PyTuple_SET_ITEM(result, 3, signature);
    return result;
fail:
    Py_XDECREF(header);
    Py_XDECREF(payload);
    Py_XDECREF(signing_input);
    Py_XDECREF(signature);
    return NULL;
}

PyDoc_STRVAR(b64encode_doc,
"b64encode(data: bytes) -> bytes\n\nbase64url without padding (RFC 7515 section 2).");

static PyObject *
b64encode(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    const unsigned char *in;
    unsigned char *out;
    Py_ssize_t len, full, i, o = 0;
    unsigned int v;
    PyObject *result;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    in = view.buf;
    len = view.len;
    full = len / 3 * 3;
    result = PyBytes_FromStringAndSize(NULL, len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0));
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    for (i = 0; i < full; i += 3) {
        v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
        out[o++] = B64URL[v >> 18];
        out[o++] = B64URL[(v >> 12) & 63];
        out[o++] = B64URL[(v >> 6) & 63];
        out[o++] = B64URL[v & 63];
    }
    if (len - full) {
        v = in[full] << 16;
        if (len - full == 2) {
            v |= in[full + 1] << 8;
        }
        out[o++] = B64URL[v >> 18];
        out[o++] = B64URL[(v >> 12) & 63];
        if (len - full == 2) {
            out[o++] = B64URL[(v >> 6) & 63];
        }
    }
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(der_to_raw_doc,
"der_to_raw(der: bytes) -> bytes | None\n\n"
"The 64-byte R||S of a P-256 ECDSA signature in minimal short-form DER, as\n"
"OpenSSL writes it; None for any other shape (the caller then asks\n"
"cryptography's decode_dss_signature).");

/* One minimal DER INTEGER below 2**256 at der[*pos], copied right-aligned into out[32]. */
static int
der_integer(const unsigned char *der, Py_ssize_t len, Py_ssize_t *pos, unsigned char *out)
{
    Py_ssize_t p = *pos, n;
    const unsigned char *value;

    if (p + 2 > len || der[p] != 0x02) {
        return 0;
    }
    n = der[p + 1];
    value = der + p + 2;
    if (n < 1 || n > 33 || p + 2 + n > len) {
        return 0;
    }
    if (n == 33) {
        if (value[0] != 0 || !(value[1] & 0x80)) {
            return 0;
        }
        value++;
        n--;
    }
    else if ((value[0] & 0x80) || (n > 1 && value[0] == 0 && !(value[1] & 0x80))) {
        return 0;  /* negative, or a superfluous leading zero */
    }
    memset(out, 0, 32 - n);
    memcpy(out + 32 - n, value, n);
    *pos = p + 2 + der[p + 1];
    return 1;
}

static PyObject *
der_to_raw(PyObject *module, PyObject *arg)
{
    const unsigned char *der;
    Py_ssize_t len, pos = 2;
    unsigned char raw[64];

    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "der_to_raw() needs bytes");
        return NULL;
    }
    der = (const unsigned char *)PyBytes_AS_STRING(arg);
    len = PyBytes_GET_SIZE(arg);
    if (len < 8 || der[0] != 0x30 || der[1] != len - 2 || !der_integer(der, len, &pos, raw)
        || !der_integer(der, len, &pos, raw + 32) || pos != len) {
        Py_RETURN_NONE;
    }
    return PyBytes_FromStringAndSize((const char *)raw, 64);
}

PyDoc_STRVAR(raw_to_der_doc,
"raw_to_der(raw: bytes) -> bytes\n\n"
"The DER SEQUENCE { INTEGER r, INTEGER s } of a 64-byte JOSE R||S, each\n"
"integer minimal, as encode_dss_signature writes it.");

static Py_ssize_t
put_integer(const unsigned char *half, unsigned char *out)
{
    Py_ssize_t skip = 0, n, o = 0;

    while (skip < 31 && half[skip] == 0) {
        skip++;
    }
    n = 32 - skip;
    out[o++] = 0x02;
    out[o++] = (unsigned char)(n + (half[skip] & 0x80 ? 1 : 0));
    if (half[skip] & 0x80) {
        out[o++] = 0;
    }
    memcpy(out + o, half + skip, n);
    return o + n;
}

static PyObject *
raw_to_der(PyObject *module, PyObject *arg)
{
    const unsigned char *raw;
    unsigned char der[72];
    Py_ssize_t o = 2;

    if (!PyBytes_Check(arg) || PyBytes_GET_SIZE(arg) != 64) {
        PyErr_SetString(PyExc_ValueError, "raw_to_der() needs 64 bytes");
        return NULL;
    }
    raw = (const unsigned char *)PyBytes_AS_STRING(arg);
    o += put_integer(raw, der + o);
    o += put_integer(raw + 32, der + o);
    der[0] = 0x30;
    der[1] = (unsigned char)(o - 2);
    return PyBytes_FromStringAndSize((const char *)der, o);
}

/* ------------------------------------------------------------------ signing */

PyDoc_STRVAR(es256_compact_doc,
"es256_compact(sign, algorithm, der_to_raw, prefix: bytes, payload: bytes) -> str\n\n"
"The JWS compact token: prefix + base64url(payload) signed by\n"
"sign(signing_input, algorithm) (the cryptography private key's sign: DER\n"
"out), then '.' and the base64url of its R||S. A DER that is not minimal\n"
"short form is framed by der_to_raw(der) (the caller's cryptography path).\n"
"Bind the first three with functools.partial.");

static PyObject *b64encode(PyObject *module, PyObject *arg);
static PyObject *der_to_raw(PyObject *module, PyObject *arg);

static PyObject *
es256_compact(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *encoded = NULL, *signing_input = NULL, *der = NULL, *raw = NULL, *result = NULL;
    PyObject *call[2];
    Py_ssize_t prefix_len, encoded_len, raw_len, i;
    char *out;

    if (nargs != 5 || !PyBytes_Check(args[3]) || !PyBytes_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "es256_compact(sign, algorithm, der_to_raw, prefix, payload)");
        return NULL;
    }
    prefix_len = PyBytes_GET_SIZE(args[3]);
    for (i = 0; i < prefix_len; i++) {  /* the token is built as an ASCII str */
        if ((unsigned char)PyBytes_AS_STRING(args[3])[i] > 127) {
            PyErr_SetString(PyExc_ValueError, "es256_compact() needs an ASCII prefix");
            return NULL;
        }
    }
    encoded = b64encode(module, args[4]);
    if (encoded == NULL) {
        return NULL;
    }
    encoded_len = PyBytes_GET_SIZE(encoded);
    signing_input = PyBytes_FromStringAndSize(NULL, prefix_len + encoded_len);
    if (signing_input == NULL) {
        goto done;
    }
    memcpy(PyBytes_AS_STRING(signing_input), PyBytes_AS_STRING(args[3]), prefix_len);
    memcpy(PyBytes_AS_STRING(signing_input) + prefix_len, PyBytes_AS_STRING(encoded), encoded_len);
    call[0] = signing_input;
    call[1] = args[1];
    der = PyObject_Vectorcall(args[0], call, 2, NULL);
    if (der == NULL) {
        goto done;
    }
    if (!PyBytes_Check(der)) {
        PyErr_SetString(PyExc_TypeError, "sign() must return bytes");
        goto done;
    }
    raw = der_to_raw(module, der);
    if (raw == Py_None) {
        Py_SETREF(raw, PyObject_CallOneArg(args[2], der));
    }
    if (raw == NULL) {
        goto done;
    }
    if (!PyBytes_Check(raw) || PyBytes_GET_SIZE(raw) != 64) {
        PyErr_SetString(PyExc_ValueError, "der_to_raw() must return 64 bytes");
        goto done;
    }
    Py_SETREF(raw, b64encode(module, raw));
    if (raw == NULL) {
        goto done;
    }
    raw_len = PyBytes_GET_SIZE(raw);
    result = PyUnicode_New(prefix_len + encoded_len + 1 + raw_len, 127);
    if (result == NULL) {
        goto done;
    }
    out = (char *)PyUnicode_1BYTE_DATA(result);
    memcpy(out, PyBytes_AS_STRING(signing_input), prefix_len + encoded_len);
    out[prefix_len + encoded_len] = '.';
    memcpy(out + prefix_len + encoded_len + 1, PyBytes_AS_STRING(raw), raw_len);
done:
    Py_XDECREF(encoded);
    Py_XDECREF(signing_input);
    Py_XDECREF(der);
    Py_XDECREF(raw);
    return result;
}

PyDoc_STRVAR(es256_check_doc,
"es256_check(verify, algorithm, invalid, signing_input: bytes, signature: bytes) -> bool\n\n"
"False unless signature is 64 bytes; else verify(DER of R||S, signing_input,\n"
"algorithm) (the cryptography public key's verify): True when it returns,\n"
"False when it raises `invalid` (InvalidSignature); other errors propagate.\n"
"Bind the first three with functools.partial.");

static PyObject *raw_to_der(PyObject *module, PyObject *arg);

static PyObject *
es256_check(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *der, *outcome, *call[3];

    if (nargs != 5 || !PyBytes_Check(args[3]) || !PyBytes_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "es256_check(verify, algorithm, invalid, signing_input, signature)");
        return NULL;
    }
    if (PyBytes_GET_SIZE(args[4]) != 64) {  /* raw R||S only: DER or truncated fail */
        Py_RETURN_FALSE;
    }
    der = raw_to_der(module, args[4]);
    if (der == NULL) {
        return NULL;
    }
    call[0] = der;
    call[1] = args[3];
    call[2] = args[1];
    outcome = PyObject_Vectorcall(args[0], call, 3, NULL);
    Py_DECREF(der);
    if (outcome == NULL) {
        if (PyErr_ExceptionMatches(args[2])) {
            PyErr_Clear();
            Py_RETURN_FALSE;
        }
        return NULL;
    }
    Py_DECREF(outcome);
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"split", split, METH_O, split_doc},
    {"b64encode", b64encode, METH_O, b64encode_doc},
    {"der_to_raw", der_to_raw, METH_O, der_to_raw_doc},
    {"raw_to_der", raw_to_der, METH_O, raw_to_der_doc},
    {"es256_compact", (PyCFunction)(void (*)(void))es256_compact, METH_FASTCALL, es256_compact_doc},
    {"es256_check", (PyCFunction)(void (*)(void))es256_check, METH_FASTCALL, es256_check_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "token_suite._speedups",
    "Byte framing of JWS compact tokens (see token_suite._jws for the reference).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    int i;

    memset(DECODE, 255, sizeof DECODE);
    for (i = 0; i < 64; i++) {
        DECODE[(unsigned char)B64URL[i]] = (unsigned char)i;
    }
    DECODE['.'] = 64;
    return PyModule_Create(&module_def);
}
