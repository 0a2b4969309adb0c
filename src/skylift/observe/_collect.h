/* Shared by the C collector's files (_collect.c: the type; _collect_rows.c: the stored
 * log's rows); collect.py documents what they do. */
#ifndef SKYLIFT_COLLECT_H
#define SKYLIFT_COLLECT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define MAX_BOUNDS 64
#define ROW_SIZE 49 /* logs_frame.ROW: <qddIIBIIII */
#define FAILED 1
#define INIT 2
#define NO_EVENT 32

typedef struct {
    PyObject *spec;    /* strong */
    PyObject *trigger; /* strong */
    Py_ssize_t n;
    Py_ssize_t counts[MAX_BOUNDS + 1];
    double sum_ms;
} Tally;

typedef struct {
    PyObject_HEAD
    PyObject *open_stream; /* callable(spec, instance) -> (pieces, flags), or None */
    PyObject *slow_row;    /* callable(numbers, rid, output, body, event) -> pieces */
    PyObject *arm;         /* callable(): the batch got its first invocation */
    PyObject *full;        /* callable(): the batch is full */
    PyObject *mark;        /* bytes: EMF's mark in an output */
    Py_ssize_t max_batch, max_bytes, limit;
    int nbounds;
    double bounds[MAX_BOUNDS];
    /* The batch. */
    Py_ssize_t count, bytes, rows, size;
    PyObject *notable; /* list */
    PyObject *entries; /* dict: id of instance (or of spec) -> [owner, spec, pieces, flags, memory] */
    Tally *tallies;
    Py_ssize_t ntallies, captallies, last_tally;
} Collector;

/* An entry: the instance (or spec) it is for, its spec, the stream's pieces (a list, or
 * None without stored logs), the row flags of its function and its memory size. */
enum { E_OWNER, E_SPEC, E_PIECES, E_FLAGS, E_MEMORY, E_SIZE };

/* Epoch milliseconds of epoch nanoseconds, floored as Python's // floors. */
int64_t collect_ms_of(int64_t ns);
/* One invocation's row, appended to its entry's pieces (see _collect_rows.c). */
int collect_store_row(Collector *self, PyObject *entry, int64_t ended_ns, PyObject *rid,
                      PyObject *payload, PyObject *error, PyObject *logs, PyObject *duration,
                      PyObject *init, PyObject *used_mb, PyObject *event);

#endif
