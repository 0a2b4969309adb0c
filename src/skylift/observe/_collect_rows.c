/* skylift.observe._collect's stored-log rows: each invocation's `logs_frame.ROW` head
 * and its four parts, appended to its stream's pieces (a bytearray grown by doubling), or
 * made by `slow_row` (logs_frame.uncommon_row) outside the common case. */
#include "_collect.h"

int64_t
collect_ms_of(int64_t ns)
{
    int64_t ms = ns / 1000000;
    return (ns % 1000000 < 0) ? ms - 1 : ms;
}

static void
put_u32(char *at, uint32_t value)
{
    at[0] = (char)(value & 0xFF);
    at[1] = (char)((value >> 8) & 0xFF);
    at[2] = (char)((value >> 16) & 0xFF);
    at[3] = (char)((value >> 24) & 0xFF);
}

static void
put_u64(char *at, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        at[i] = (char)((value >> (8 * i)) & 0xFF);
}

static void
put_f64(char *at, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, 8);
    put_u64(at, bits);
}

/* An unsigned 32-bit field's value, or -1 (no error set) when out of range. */
static int64_t
u32_of(PyObject *value)
{
    if (!PyLong_Check(value))
        return -1;
    int overflow = 0;
    long long found = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || found < 0 || found > 0xFFFFFFFFLL) {
        PyErr_Clear();
        return -1;
    }
    return found;
}

/* Append `parts` (n of them) to the stream's pieces: into its last piece when that is
 * a bytearray this collector grows (capacity doubled), else a new one. */
static int
append_row(PyObject *pieces, const char *head, const char **parts, const Py_ssize_t *sizes,
           int n)
{
    Py_ssize_t need = ROW_SIZE;
    for (int i = 0; i < n; i++)
        need += sizes[i];
    Py_ssize_t count = PyList_GET_SIZE(pieces);
    PyObject *buffer = count ? PyList_GET_ITEM(pieces, count - 1) : NULL;
    if (buffer == NULL || !PyByteArray_CheckExact(buffer)) {
        buffer = PyByteArray_FromStringAndSize(NULL, 0);
        if (buffer == NULL)
            return -1;
        if (PyList_Append(pieces, buffer) < 0) {
            Py_DECREF(buffer);
            return -1;
        }
        Py_DECREF(buffer); /* the list holds it */
    }
    Py_ssize_t used = PyByteArray_GET_SIZE(buffer), total = used + need;
    /* bytearray's own growth is 12.5% a step; this doubles: grown to twice what is
     * needed (one realloc), then set to what is needed, which keeps the capacity while
     * the size is at least half of it (a smaller size would give it back). */
    if (total + 1 > (((PyByteArrayObject *)buffer)->ob_alloc) &&
        PyByteArray_Resize(buffer, 2 * total - 1) < 0)
        return -1;
    if (PyByteArray_Resize(buffer, total) < 0)
        return -1;
    char *at = PyByteArray_AS_STRING(buffer) + used;
    memcpy(at, head, ROW_SIZE);
    at += ROW_SIZE;
    for (int i = 0; i < n; i++) {
        if (sizes[i]) {
            memcpy(at, parts[i], sizes[i]);
            at += sizes[i];
        }
    }
    return 0;
}

/* One invocation's row: packed here, or by `slow_row` (a number out of its field's
 * range, a body or event over `limit`). */
int
collect_store_row(Collector *self, PyObject *entry, int64_t ended_ns, PyObject *rid, PyObject *payload,
          PyObject *error, PyObject *logs, PyObject *duration, PyObject *init,
          PyObject *used_mb, PyObject *event)
{
    PyObject *pieces = PyList_GET_ITEM(entry, E_PIECES);
    long flags = PyLong_AsLong(PyList_GET_ITEM(entry, E_FLAGS));
    if (flags == -1 && PyErr_Occurred())
        return -1;
    if (!Py_IsNone(error))
        flags |= FAILED;
    double init_ms = 0.0;
    if (!Py_IsNone(init)) {
        flags |= INIT;
        init_ms = PyFloat_AsDouble(init);
        if (init_ms == -1.0 && PyErr_Occurred())
            return -1;
    }
    PyObject *event_bytes = event;
    if (Py_IsNone(event)) {
        flags |= NO_EVENT;
        event_bytes = NULL;
    }
    Py_ssize_t rid_size;
    const char *rid_text = PyUnicode_AsUTF8AndSize(rid, &rid_size);
    if (rid_text == NULL)
        return -1;
    Py_ssize_t body_size = PyBytes_GET_SIZE(payload), output_size = PyBytes_GET_SIZE(logs);
    Py_ssize_t event_size = event_bytes ? PyBytes_GET_SIZE(event_bytes) : 0;
    double duration_ms = PyFloat_AsDouble(duration);
    if (duration_ms == -1.0 && PyErr_Occurred())
        return -1;
    /* Counted once nothing can fail but the packing itself (then the row is gone). */
    self->rows++;
    self->size += body_size + event_size + output_size;
    int64_t used = u32_of(used_mb);
    int64_t memory = u32_of(PyList_GET_ITEM(entry, E_MEMORY));
    if (body_size <= self->limit && event_size <= self->limit && used >= 0 && memory >= 0 &&
        rid_size <= 0xFFFFFFFFLL && output_size <= 0xFFFFFFFFLL) {
        char head[ROW_SIZE];
        put_u64(head, (uint64_t)collect_ms_of(ended_ns));
        put_f64(head + 8, duration_ms);
        put_f64(head + 16, init_ms);
        put_u32(head + 24, (uint32_t)used);
        put_u32(head + 28, (uint32_t)memory);
        head[32] = (char)flags;
        put_u32(head + 33, (uint32_t)rid_size);
        put_u32(head + 37, (uint32_t)output_size);
        put_u32(head + 41, (uint32_t)body_size);
        put_u32(head + 45, (uint32_t)event_size);
        const char *parts[4] = {rid_text, PyBytes_AS_STRING(logs), PyBytes_AS_STRING(payload),
                                event_bytes ? PyBytes_AS_STRING(event_bytes) : ""};
        Py_ssize_t sizes[4] = {rid_size, output_size, body_size, event_size};
        return append_row(pieces, head, parts, sizes, 4);
    }
    /* As the Python store does it: (end, duration, init, used, memory, flags). */
    PyObject *rid_bytes = PyBytes_FromStringAndSize(rid_text, rid_size);
    PyObject *init_kept = Py_IsNone(init) ? PyFloat_FromDouble(0.0) : Py_NewRef(init);
    PyObject *numbers = init_kept == NULL ? NULL
                                          : Py_BuildValue("(LdNOOl)", (long long)collect_ms_of(ended_ns),
                                                          duration_ms, init_kept, used_mb,
                                                          PyList_GET_ITEM(entry, E_MEMORY), flags);
    PyObject *empty = event_bytes ? NULL : PyBytes_FromStringAndSize(NULL, 0);
    PyObject *made = NULL;
    if (rid_bytes != NULL && numbers != NULL && (event_bytes != NULL || empty != NULL)) {
        PyObject *call = Py_NewRef(self->slow_row); /* held while it runs */
        made = PyObject_CallFunctionObjArgs(call, numbers, rid_bytes, logs, payload,
                                            event_bytes ? event_bytes : empty, NULL);
        Py_DECREF(call);
    }
    Py_XDECREF(rid_bytes);
    Py_XDECREF(numbers);
    Py_XDECREF(empty);
    if (made == NULL)
        return -1;
    PyObject *seq = PySequence_Fast(made, "slow_row must return a sequence");
    Py_DECREF(made);
    if (seq == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        if (PyList_Append(pieces, PySequence_Fast_GET_ITEM(seq, i)) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}
