/* skylift.observe._collect: the invoker observer of `skylift up`'s observing, in C.
 *
 * `collect.py` says what it does and holds the Python it must agree with; this file is
 * the same work at a fraction of the server's CPU: each finished invocation's stored-log
 * row is packed into its stream's buffer as it ends (its bytes still in the CPU's cache),
 * a common invocation (a success of an instance already seen in this batch, no EMF
 * output) is tallied per function and trigger (count, duration buckets, sum), and the
 * rest ("notable": failures, cold starts, an instance's first invocation of the batch,
 * EMF output) are kept for the Python consumers. Per invocation it allocates only a
 * dict key (its instance's id), the attribute reads' results and a notable's tuple.
 */
#include "_collect.h"

static PyObject *s_request_id, *s_payload, *s_error, *s_logs, *s_duration_ms, *s_init_ms,
    *s_max_memory_mb, *s_event, *s_trigger, *s_memory;

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
clear_batch(Collector *self)
{
    Py_CLEAR(self->notable);
    Py_CLEAR(self->entries);
    for (Py_ssize_t i = 0; i < self->ntallies; i++) {
        Py_CLEAR(self->tallies[i].spec);
        Py_CLEAR(self->tallies[i].trigger);
    }
    self->ntallies = 0;
    self->last_tally = -1;
    self->count = self->bytes = self->rows = self->size = 0;
}

static int
Collector_traverse(Collector *self, visitproc visit, void *arg)
{
    Py_VISIT(self->open_stream);
    Py_VISIT(self->slow_row);
    Py_VISIT(self->arm);
    Py_VISIT(self->full);
    Py_VISIT(self->notable);
    Py_VISIT(self->entries);
    for (Py_ssize_t i = 0; i < self->ntallies; i++) {
        Py_VISIT(self->tallies[i].spec);
        Py_VISIT(self->tallies[i].trigger);
    }
    return 0;
}

static int
Collector_clear(Collector *self)
{
    clear_batch(self);
    Py_CLEAR(self->open_stream);
    Py_CLEAR(self->slow_row);
    Py_CLEAR(self->arm);
    Py_CLEAR(self->full);
    Py_CLEAR(self->mark);
    return 0;
}

static void
Collector_dealloc(Collector *self)
{
    PyObject_GC_UnTrack(self);
    Collector_clear(self);
    PyMem_Free(self->tallies);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Collector_init(Collector *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"open_stream", "slow_row", "arm", "full", "bounds", "mark",
                            "max_batch", "max_bytes", "limit", NULL};
    PyObject *open_stream, *slow_row, *arm, *full, *bounds, *mark;
    Py_ssize_t max_batch, max_bytes, limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOSnnn", names, &open_stream, &slow_row,
                                     &arm, &full, &bounds, &mark, &max_batch, &max_bytes,
                                     &limit))
        return -1;
    PyObject *seq = PySequence_Fast(bounds, "bounds must be a sequence of numbers");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_BOUNDS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "at most %d bounds", MAX_BOUNDS);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double value = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (value == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        self->bounds[i] = value;
    }
    Py_DECREF(seq);
    self->nbounds = (int)n;
    Collector_clear(self);
    self->open_stream = Py_IsNone(open_stream) ? NULL : Py_NewRef(open_stream);
    self->slow_row = Py_NewRef(slow_row);
    self->arm = Py_NewRef(arm);
    self->full = Py_NewRef(full);
    self->mark = Py_NewRef(mark);
    self->max_batch = max_batch;
    self->max_bytes = max_bytes;
    self->limit = limit;
    return 0;
}

/* The entry of `instance` (or, for None, of `spec`) in this batch: a new reference
 * (the Python called meanwhile may take the batch, and the dict with it);
 * `*first` is set when the instance had none yet (its first invocation of the batch). */
static PyObject *
entry_of(Collector *self, PyObject *spec, PyObject *instance, int *first)
{
    PyObject *owner = Py_IsNone(instance) ? spec : instance;
    PyObject *key = PyLong_FromVoidPtr(owner);
    if (key == NULL)
        return NULL;
    PyObject *entry =
        self->entries != NULL ? PyDict_GetItemWithError(self->entries, key) : NULL;
    if (entry != NULL && PyList_GET_ITEM(entry, E_SPEC) == spec) {
        Py_DECREF(key);
        *first = 0;
        return Py_NewRef(entry);
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    /* New to this batch (or served another spec: a reload): a stream looked up once. */
    *first = 1;
    PyObject *pieces = Py_None, *flags = NULL, *memory = NULL, *opened = NULL;
    if (self->open_stream != NULL) {
        PyObject *call = Py_NewRef(self->open_stream); /* held while it runs */
        opened = PyObject_CallFunctionObjArgs(call, spec, instance, NULL);
        Py_DECREF(call);
        if (opened == NULL)
            goto fail;
        if (!PyTuple_Check(opened) || PyTuple_GET_SIZE(opened) != 2 ||
            !PyList_Check(PyTuple_GET_ITEM(opened, 0))) {
            PyErr_SetString(PyExc_TypeError, "open_stream must return (list, int)");
            goto fail;
        }
        pieces = PyTuple_GET_ITEM(opened, 0);
        flags = Py_NewRef(PyTuple_GET_ITEM(opened, 1));
        memory = PyObject_GetAttr(spec, s_memory);
        if (memory == NULL)
            goto fail;
    }
    else {
        flags = PyLong_FromLong(0);
        memory = PyLong_FromLong(0);
        if (flags == NULL || memory == NULL)
            goto fail;
    }
    entry = PyList_New(E_SIZE);
    if (entry == NULL)
        goto fail;
    PyList_SET_ITEM(entry, E_OWNER, Py_NewRef(owner));
    PyList_SET_ITEM(entry, E_SPEC, Py_NewRef(spec));
    PyList_SET_ITEM(entry, E_PIECES, Py_NewRef(pieces));
    PyList_SET_ITEM(entry, E_FLAGS, flags);
    PyList_SET_ITEM(entry, E_MEMORY, memory);
    flags = memory = NULL;
    Py_XDECREF(opened);
    /* Made only now: `open_stream` (Python) may have let a drain run (`take`). */
    int failed = self->entries == NULL && (self->entries = PyDict_New()) == NULL;
    failed = failed || PyDict_SetItem(self->entries, key, entry) < 0;
    Py_DECREF(key);
    if (failed) {
        Py_DECREF(entry);
        return NULL;
    }
    return entry;
fail:
    Py_DECREF(key);
    Py_XDECREF(opened);
    Py_XDECREF(flags);
    Py_XDECREF(memory);
    return NULL;
}

static Tally *
tally_of(Collector *self, PyObject *spec, PyObject *trigger)
{
    if (self->last_tally >= 0) {
        Tally *last = &self->tallies[self->last_tally];
        if (last->spec == spec && last->trigger == trigger)
            return last;
    }
    for (Py_ssize_t i = 0; i < self->ntallies; i++) {
        Tally *found = &self->tallies[i];
        if (found->spec != spec)
            continue;
        int same = found->trigger == trigger ? 1
                                             : PyObject_RichCompareBool(found->trigger, trigger,
                                                                        Py_EQ);
        if (same < 0)
            return NULL;
        if (same) {
            self->last_tally = i;
            return found;
        }
    }
    if (self->ntallies == self->captallies) {
        Py_ssize_t grown = self->captallies ? 2 * self->captallies : 8;
        Tally *more = PyMem_Realloc(self->tallies, grown * sizeof(Tally));
        if (more == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        self->tallies = more;
        self->captallies = grown;
    }
    Tally *made = &self->tallies[self->ntallies];
    memset(made, 0, sizeof(Tally));
    made->spec = Py_NewRef(spec);
    made->trigger = Py_NewRef(trigger);
    self->last_tally = self->ntallies++;
    return made;
}

static int
contains(PyObject *haystack, PyObject *needle)
{
    Py_ssize_t size = PyBytes_GET_SIZE(haystack), n = PyBytes_GET_SIZE(needle);
    return size >= n && memmem(PyBytes_AS_STRING(haystack), size, PyBytes_AS_STRING(needle), n);
}

static PyObject *
get(PyObject *result, PyObject *name, PyObject **out)
{
    *out = PyObject_GetAttr(result, name);
    return *out;
}

/* collector(spec, result, instance=None, ended_ns=None): one finished invocation. */
static PyObject *
Collector_call(Collector *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"spec", "result", "instance", "ended_ns", NULL};
    PyObject *spec, *result, *instance = Py_None, *ended = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OO", names, &spec, &result, &instance,
                                     &ended))
        return NULL;
    if (self->slow_row == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the collector was not initialised (__init__)");
        return NULL;
    }
    int64_t ended_ns;
    if (Py_IsNone(ended))
        ended_ns = now_ns();
    else {
        ended_ns = PyLong_AsLongLong(ended);
        if (ended_ns == -1 && PyErr_Occurred())
            return NULL;
    }
    PyObject *rid = NULL, *payload = NULL, *error = NULL, *logs = NULL, *duration = NULL,
             *init = NULL, *used = NULL, *event = NULL, *trigger = NULL, *back = NULL,
             *entry = NULL;
    if (!get(result, s_request_id, &rid) || !get(result, s_payload, &payload) ||
        !get(result, s_error, &error) || !get(result, s_logs, &logs) ||
        !get(result, s_duration_ms, &duration) || !get(result, s_init_ms, &init) ||
        !get(result, s_max_memory_mb, &used) || !get(result, s_event, &event) ||
        !get(result, s_trigger, &trigger))
        goto done;
    if (!PyUnicode_Check(rid) || !PyBytes_Check(payload) || !PyBytes_Check(logs) ||
        !(Py_IsNone(event) || PyBytes_Check(event))) {
        PyErr_SetString(PyExc_TypeError,
                        "a result's request_id must be str, payload and logs bytes, event "
                        "bytes or None");
        goto done;
    }
    int first;
    entry = entry_of(self, spec, instance, &first);
    if (entry == NULL)
        goto done;
    if (!Py_IsNone(PyList_GET_ITEM(entry, E_PIECES)) &&
        collect_store_row(self, entry, ended_ns, rid, payload, error, logs, duration, init, used,
                  event) < 0)
        goto done;
    int notable = first || !Py_IsNone(error) || !Py_IsNone(init) || Py_IsNone(instance) ||
                  contains(logs, self->mark);
    if (notable) {
        if (self->notable == NULL && (self->notable = PyList_New(0)) == NULL)
            goto done;
        PyObject *observed = Py_BuildValue("(OOOL)", spec, result, instance, (long long)ended_ns);
        if (observed == NULL)
            goto done;
        int failed = PyList_Append(self->notable, observed);
        Py_DECREF(observed);
        if (failed)
            goto done;
    }
    else {
        double duration_ms = PyFloat_AsDouble(duration);
        if (duration_ms == -1.0 && PyErr_Occurred())
            goto done;
        Tally *tally = tally_of(self, spec, trigger);
        if (tally == NULL)
            goto done;
        /* The first bound the duration (in seconds) is not above: Histogram.observe's. */
        double seconds = duration_ms / 1000.0;
        int bucket = 0;
        while (bucket < self->nbounds && seconds > self->bounds[bucket])
            bucket++;
        tally->counts[bucket]++;
        tally->n++;
        tally->sum_ms += duration_ms;
    }
    self->count++;
    self->bytes += PyBytes_GET_SIZE(payload) + (Py_IsNone(event) ? 0 : PyBytes_GET_SIZE(event));
    PyObject *said = Py_None, *call = NULL;
    if (self->count >= self->max_batch || self->bytes >= self->max_bytes)
        call = self->full;
    else if (self->count == 1)
        call = self->arm;
    if (call != NULL) {
        Py_INCREF(call); /* held while it runs: it may initialise the collector again */
        said = PyObject_CallNoArgs(call);
        Py_DECREF(call);
    }
    else
        Py_INCREF(said);
    if (said == NULL)
        goto done;
    Py_DECREF(said);
    back = Py_NewRef(Py_None);
done:
    Py_XDECREF(rid);
    Py_XDECREF(payload);
    Py_XDECREF(error);
    Py_XDECREF(logs);
    Py_XDECREF(duration);
    Py_XDECREF(init);
    Py_XDECREF(used);
    Py_XDECREF(event);
    Py_XDECREF(trigger);
    Py_XDECREF(entry);
    return back;
}

/* take() -> None, or (notable, tallies, rows, size), and a new batch begins. */
static PyObject *
Collector_take(Collector *self, PyObject *Py_UNUSED(ignored))
{
    if (self->count == 0) {
        clear_batch(self);
        Py_RETURN_NONE;
    }
    PyObject *tallies = PyList_New(self->ntallies);
    if (tallies == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < self->ntallies; i++) {
        Tally *tally = &self->tallies[i];
        PyObject *counts = PyList_New(self->nbounds + 1);
        if (counts == NULL) {
            Py_DECREF(tallies);
            return NULL;
        }
        for (int b = 0; b <= self->nbounds; b++) {
            PyObject *count = PyLong_FromSsize_t(tally->counts[b]);
            if (count == NULL) {
                Py_DECREF(counts);
                Py_DECREF(tallies);
                return NULL;
            }
            PyList_SET_ITEM(counts, b, count);
        }
        PyObject *item = Py_BuildValue("(OOnNd)", tally->spec, tally->trigger, tally->n, counts,
                                       tally->sum_ms);
        if (item == NULL) {
            Py_DECREF(tallies);
            return NULL;
        }
        PyList_SET_ITEM(tallies, i, item);
    }
    PyObject *notable = self->notable != NULL ? Py_NewRef(self->notable) : PyList_New(0);
    if (notable == NULL) {
        Py_DECREF(tallies);
        return NULL;
    }
    PyObject *taken = Py_BuildValue("(NNnn)", notable, tallies, self->rows, self->size);
    if (taken != NULL)
        clear_batch(self);
    return taken;
}

static PyObject *
Collector_pending(Collector *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->count);
}

static PyMethodDef Collector_methods[] = {
    {"take", (PyCFunction)Collector_take, METH_NOARGS,
     "take() -> None, or (notable, tallies, rows, size): the batch so far; a new one begins."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Collector_getset[] = {
    {"pending", (getter)Collector_pending, NULL, "invocations in the batch", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CollectorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skylift.observe._collect.Collector",
    .tp_doc = PyDoc_STR("The invoker observer of observing (see skylift/observe/collect.py)."),
    .tp_basicsize = sizeof(Collector),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Collector_init,
    .tp_dealloc = (destructor)Collector_dealloc,
    .tp_traverse = (traverseproc)Collector_traverse,
    .tp_clear = (inquiry)Collector_clear,
    .tp_call = (ternaryfunc)Collector_call,
    .tp_methods = Collector_methods,
    .tp_getset = Collector_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "skylift.observe._collect",
    "The invoker observer of skylift up's observing, in C (skylift/observe/collect.py).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__collect(void)
{
#define INTERN(var, text)                                                                    \
    if ((var = PyUnicode_InternFromString(text)) == NULL)                                    \
        return NULL;
    INTERN(s_request_id, "request_id");
    INTERN(s_payload, "payload");
    INTERN(s_error, "error");
    INTERN(s_logs, "logs");
    INTERN(s_duration_ms, "duration_ms");
    INTERN(s_init_ms, "init_ms");
    INTERN(s_max_memory_mb, "max_memory_mb");
    INTERN(s_event, "event");
    INTERN(s_trigger, "trigger");
    INTERN(s_memory, "memory");
    if (PyType_Ready(&CollectorType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Collector", (PyObject *)&CollectorType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
