/* The two loops that run once per recorded op, in C: recording a node (``Function.__call__``, the
 * same steps as ``autograd._call_python``) and the backward walk (``autograd._run_backward_python``).
 * In Python they cost about 1 and 2 us per op; the arithmetic is in the ops' own methods, which
 * both versions call the same way, in the same order.
 *
 * Only the common cases are here. Everything else, and everything with a message or a rule of its
 * own, stays in Python and is called back: calls on GPU arrays or on non-tensors
 * (_call_python), functions with several outputs (_finish_many), the leaf-gradient copy rule
 * (_accumulate_leaf), an unused output's zero gradient (_output_gradient), the error for a second
 * backward and the error for a gradient of the wrong shape or dtype. ``autograd`` hands those in
 * once through ``configure``. Built as an optional extension: without a
 * compiler gpugrad runs the Python versions (the test suite runs both).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *FREED, *ACCUMULATE_LEAF, *OUTPUT_GRADIENT, *GRADIENT_ERROR, *SECOND_BACKWARD, *AS_ARRAY;
static PyObject *S_SAVED, *S_OUTPUTS, *S_RETAINING, *S_BACKWARD, *S_INPUTS, *S_NEEDS, *S_DATA, *S_SHAPE,
    *S_DTYPE, *S_CREATOR, *S_SERIAL, *S_BASE;

typedef struct {
    long long serial;
    PyObject *function; /* a strong reference */
} Entry;

typedef struct {
    Entry *items;
    Py_ssize_t size, capacity;
} Heap; /* a max-heap on serial: the latest-recorded function first */

static int heap_push(Heap *h, long long serial, PyObject *function) {
    if (h->size == h->capacity) {
        Py_ssize_t capacity = h->capacity ? 2 * h->capacity : 16;
        Entry *items = PyMem_Realloc(h->items, capacity * sizeof(Entry));
        if (!items) {
            PyErr_NoMemory();
            return -1;
        }
        h->items = items;
        h->capacity = capacity;
    }
    Py_ssize_t i = h->size++;
    while (i > 0) {
        Py_ssize_t parent = (i - 1) / 2;
        if (h->items[parent].serial >= serial) break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    Py_INCREF(function);
    h->items[i].serial = serial;
    h->items[i].function = function;
    return 0;
}

static PyObject *heap_pop(Heap *h) { /* a strong reference; the heap is not empty */
    PyObject *top = h->items[0].function;
    Entry last = h->items[--h->size];
    Py_ssize_t i = 0;
    for (;;) {
        Py_ssize_t child = 2 * i + 1;
        if (child >= h->size) break;
        if (child + 1 < h->size && h->items[child + 1].serial > h->items[child].serial) child++;
        if (h->items[child].serial <= last.serial) break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->size) h->items[i] = last;
    return top;
}

static void heap_clear(Heap *h) {
    for (Py_ssize_t i = 0; i < h->size; i++) Py_DECREF(h->items[i].function);
    PyMem_Free(h->items);
}

static int queue(Heap *heap, PyObject *queued, PyObject *function) {
    int seen = PySet_Contains(queued, function);
    if (seen) return seen < 0 ? -1 : 0;
    if (PySet_Add(queued, function) < 0) return -1;
    PyObject *serial = PyObject_GetAttr(function, S_SERIAL);
    if (!serial) return -1;
    long long key = PyLong_AsLongLong(serial);
    Py_DECREF(serial);
    if (key == -1 && PyErr_Occurred()) return -1;
    return heap_push(heap, key, function);
}

/* pending[id(tensor)] += grad (or = grad) */
static int add_pending(PyObject *pending, PyObject *tensor, PyObject *grad) {
    PyObject *key = PyLong_FromVoidPtr(tensor);
    if (!key) return -1;
    PyObject *previous = PyDict_GetItemWithError(pending, key); /* borrowed */
    int status;
    if (previous) {
        PyObject *total = PyNumber_Add(previous, grad);
        status = total ? PyDict_SetItem(pending, key, total) : -1;
        Py_XDECREF(total);
    } else {
        status = PyErr_Occurred() ? -1 : PyDict_SetItem(pending, key, grad);
    }
    Py_DECREF(key);
    return status;
}

/* The gradient of the single output behind ``ref``: pending.pop(id(output)), else _output_gradient. */
static PyObject *single_upstream(PyObject *ref, PyObject *pending) {
    PyObject *output = PyObject_CallNoArgs(ref);
    if (!output) return NULL;
    PyObject *grad = NULL;
    if (output != Py_None) {
        PyObject *key = PyLong_FromVoidPtr(output);
        if (!key) goto done;
        grad = PyDict_GetItemWithError(pending, key);
        if (grad) {
            Py_INCREF(grad);
            if (PyDict_DelItem(pending, key) < 0) Py_CLEAR(grad);
            Py_DECREF(key);
            goto done;
        }
        Py_DECREF(key);
        if (PyErr_Occurred()) goto done;
    }
    grad = PyObject_CallFunctionObjArgs(OUTPUT_GRADIENT, output, pending, Py_None, NULL);
done:
    Py_DECREF(output);
    return grad;
}

static PyObject *make_tensor(PyObject *data, PyObject *requires_grad);
static PyTypeObject *TENSOR;
static PyObject *S_GRAD;

/* _accumulate_leaf's common case: a leaf's first gradient, an array of its own (not a view, not the
 * upstream gradient passed through), stored without a copy. 0: stored; 1: not this case (the
 * Python rule decides); -1: an error. */
static int store_first_leaf_gradient(PyObject *tensor, PyObject *grad, PyObject *upstream) {
    if (!TENSOR || grad == upstream || PyList_Check(upstream)) return 1;
    PyObject *current = PyObject_GetAttr(tensor, S_GRAD);
    if (!current) return -1;
    int first = current == Py_None;
    Py_DECREF(current);
    if (!first) return 1;
    PyObject *base = PyObject_GetAttr(grad, S_BASE);
    if (!base) return -1;
    int own = base == Py_None;
    Py_DECREF(base);
    if (!own) return 1;
    PyObject *stored = make_tensor(grad, Py_False);
    if (!stored) return -1;
    int status = PyObject_SetAttr(tensor, S_GRAD, stored);
    Py_DECREF(stored);
    return status;
}

/* One input's gradient: checked, then into the leaf's .grad or into pending (queueing its creator). */
static int route(PyObject *function, PyObject *tensor, PyObject *grad, PyObject *upstream, PyObject *pending,
                 PyObject *queued, Heap *heap) {
    int status = -1;
    PyObject *data = NULL, *shape = NULL, *want_shape = NULL, *dtype = NULL, *want_dtype = NULL, *creator = NULL;
    Py_INCREF(grad);
    if (!(data = PyObject_GetAttr(tensor, S_DATA))) goto done;
    if (Py_TYPE(grad) != Py_TYPE(data)) { /* numpy returns scalars from 0-d arithmetic */
        PyObject *array = PyObject_CallOneArg(AS_ARRAY, grad);
        if (!array) goto done;
        Py_SETREF(grad, array);
    }
    if (!(shape = PyObject_GetAttr(grad, S_SHAPE)) || !(want_shape = PyObject_GetAttr(data, S_SHAPE))) goto done;
    int same = PyObject_RichCompareBool(shape, want_shape, Py_EQ);
    if (same < 0) goto done;
    if (same) {
        if (!(dtype = PyObject_GetAttr(grad, S_DTYPE)) || !(want_dtype = PyObject_GetAttr(data, S_DTYPE))) goto done;
        same = dtype == want_dtype ? 1 : PyObject_RichCompareBool(dtype, want_dtype, Py_EQ);
        if (same < 0) goto done;
    }
    if (!same) {
        PyObject *r = PyObject_CallFunctionObjArgs(GRADIENT_ERROR, function, tensor, grad, NULL);
        Py_XDECREF(r);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "gradient of the wrong shape or dtype");
        goto done;
    }
    if (!(creator = PyObject_GetAttr(tensor, S_CREATOR))) goto done;
    if (creator == Py_None) {
        status = store_first_leaf_gradient(tensor, grad, upstream);
        if (status <= 0) goto done; /* stored, or an error */
        status = -1;
        PyObject *r = PyObject_CallFunctionObjArgs(ACCUMULATE_LEAF, tensor, grad, upstream, NULL);
        if (!r) goto done;
        Py_DECREF(r);
        status = 0;
        goto done;
    }
    if (add_pending(pending, tensor, grad) < 0) goto done;
    status = queue(heap, queued, creator);
done:
    Py_XDECREF(data);
    Py_XDECREF(shape);
    Py_XDECREF(want_shape);
    Py_XDECREF(dtype);
    Py_XDECREF(want_dtype);
    Py_XDECREF(creator);
    Py_DECREF(grad);
    return status;
}

/* One function's backward: its upstream gradient(s) in, its inputs' gradients routed. */
static int step(PyObject *function, PyObject *pending, PyObject *queued, Heap *heap, PyObject *retain) {
    int status = -1;
    PyObject *saved = NULL, *outputs = NULL, *upstream = NULL, *grads = NULL, *inputs = NULL, *needs = NULL;
    if (!(saved = PyObject_GetAttr(function, S_SAVED))) goto done;
    if (saved == FREED) {
        PyObject *r = PyObject_CallOneArg(SECOND_BACKWARD, function);
        Py_XDECREF(r);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "backward through a freed graph");
        goto done;
    }
    if (!(outputs = PyObject_GetAttr(function, S_OUTPUTS))) goto done;
    if (!PyTuple_Check(outputs)) {
        PyErr_SetString(PyExc_TypeError, "Function.outputs must be a tuple");
        goto done;
    }
    if (PyObject_SetAttr(function, S_RETAINING, retain) < 0) goto done;
    Py_ssize_t n_out = PyTuple_GET_SIZE(outputs);
    if (n_out == 1) {
        if (!(upstream = single_upstream(PyTuple_GET_ITEM(outputs, 0), pending))) goto done;
        grads = PyObject_CallMethodOneArg(function, S_BACKWARD, upstream);
    } else {
        PyObject *list = PyList_New(n_out);
        if (!list) goto done;
        upstream = list;
        for (Py_ssize_t i = 0; i < n_out; i++) {
            PyObject *output = PyObject_CallNoArgs(PyTuple_GET_ITEM(outputs, i));
            if (!output) goto done;
            PyObject *g = PyObject_CallFunctionObjArgs(OUTPUT_GRADIENT, output, pending, Py_None, NULL);
            Py_DECREF(output);
            if (!g) goto done;
            PyList_SET_ITEM(list, i, g);
        }
        PyObject *args = PyList_AsTuple(list);
        if (!args) goto done;
        PyObject *method = PyObject_GetAttr(function, S_BACKWARD);
        if (method) {
            grads = PyObject_Call(method, args, NULL);
            Py_DECREF(method);
        }
        Py_DECREF(args);
    }
    if (!grads) goto done;
    if (retain != Py_True && PyObject_SetAttr(function, S_SAVED, FREED) < 0) goto done;
    if (!PyTuple_Check(grads)) Py_SETREF(grads, PyTuple_Pack(1, grads));
    if (!grads) goto done;
    /* NOTE: inputs may be a list or a tuple (whatever the op's argument conversion made). */
    if (!(inputs = PyObject_GetAttr(function, S_INPUTS))) goto done;
    Py_SETREF(inputs, PySequence_Fast(inputs, "Function.inputs must be a sequence"));
    if (!inputs || !(needs = PyObject_GetAttr(function, S_NEEDS))) goto done;
    Py_SETREF(needs, PySequence_Fast(needs, "Function.needs_input_grad must be a sequence"));
    if (!needs) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(inputs); /* zip(): the shortest of the three */
    if (PyTuple_GET_SIZE(grads) < n) n = PyTuple_GET_SIZE(grads);
    if (PySequence_Fast_GET_SIZE(needs) < n) n = PySequence_Fast_GET_SIZE(needs);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *grad = PyTuple_GET_ITEM(grads, i);
        if (grad == Py_None) continue;
        int needed = PyObject_IsTrue(PySequence_Fast_GET_ITEM(needs, i));
        if (needed < 0) goto done;
        if (!needed) continue;
        if (route(function, PySequence_Fast_GET_ITEM(inputs, i), grad, upstream, pending, queued, heap) < 0) goto done;
    }
    status = 0;
done:
    Py_XDECREF(saved);
    Py_XDECREF(outputs);
    Py_XDECREF(upstream);
    Py_XDECREF(grads);
    Py_XDECREF(inputs);
    Py_XDECREF(needs);
    return status;
}

static PyObject *run_backward(PyObject *self, PyObject *args) {
    PyObject *root, *grad, *retain;
    if (!PyArg_ParseTuple(args, "OOO:run_backward", &root, &grad, &retain)) return NULL;
    if (!FREED) {
        PyErr_SetString(PyExc_RuntimeError, "gpugrad._engine: configure() was not called");
        return NULL;
    }
    int retaining = PyObject_IsTrue(retain);
    if (retaining < 0) return NULL;
    retain = retaining ? Py_True : Py_False;
    PyObject *result = NULL, *pending = NULL, *queued = NULL, *first = NULL;
    Heap heap = {NULL, 0, 0};
    if (!(pending = PyDict_New()) || !(queued = PySet_New(NULL))) goto done;
    if (add_pending(pending, root, grad) < 0) goto done;
    if (!(first = PyObject_GetAttr(root, S_CREATOR))) goto done;
    if (queue(&heap, queued, first) < 0) goto done;
    while (heap.size) {
        PyObject *function = heap_pop(&heap);
        int status = step(function, pending, queued, &heap, retain);
        Py_DECREF(function);
        if (status < 0) goto done;
    }
    result = Py_NewRef(Py_None);
done:
    heap_clear(&heap);
    Py_XDECREF(first);
    Py_XDECREF(pending);
    Py_XDECREF(queued);
    return result;
}



/* -- Function.__call__ ------------------------------------------------------------------------- */

static PyTypeObject *NDARRAY;
static PyObject *CPU, *STATE, *SERIALS, *CALL_PYTHON, *FINISH_MANY, *EMPTY;
static PyObject *S_FORWARD, *S_REQUIRES_GRAD, *S_ENABLED, *S_BACKEND, *S_NAME;

static PyObject *call_python(PyObject *self, PyObject *args) {
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *full = PyTuple_New(n + 1);
    if (!full) return NULL;
    PyTuple_SET_ITEM(full, 0, Py_NewRef(self));
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    PyObject *result = PyObject_Call(CALL_PYTHON, full, NULL);
    Py_DECREF(full);
    return result;
}

/* Tensor._make(data, requires_grad): a tensor with no graph. */
static PyObject *make_tensor(PyObject *data, PyObject *requires_grad) {
    PyObject *tensor = TENSOR->tp_new(TENSOR, EMPTY, NULL);
    if (!tensor) return NULL;
    if (PyObject_SetAttr(tensor, S_DATA, data) < 0 || PyObject_SetAttr(tensor, S_GRAD, Py_None) < 0 ||
        PyObject_SetAttr(tensor, S_CREATOR, Py_None) < 0 || PyObject_SetAttr(tensor, S_NAME, Py_None) < 0 ||
        PyObject_SetAttr(tensor, S_REQUIRES_GRAD, requires_grad) < 0) {
        Py_DECREF(tensor);
        return NULL;
    }
    return tensor;
}

static PyObject *function_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    if (kwargs && PyDict_GET_SIZE(kwargs)) {
        PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", Py_TYPE(self)->tp_name);
        return NULL;
    }
    if (!TENSOR) {
        PyErr_SetString(PyExc_RuntimeError, "gpugrad._engine: configure() was not called");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n < 1 || n > 2) return call_python(self, args);
    PyObject *data[2] = {NULL, NULL}, *needs = NULL, *outputs = NULL, *result = NULL;
    for (Py_ssize_t i = 0; i < n; i++) { /* the fast case: tensors holding numpy arrays (the CPU) */
        PyObject *t = PyTuple_GET_ITEM(args, i);
        if (!PyObject_TypeCheck(t, TENSOR)) goto python;
        if (!(data[i] = PyObject_GetAttr(t, S_DATA))) goto fail;
        if (Py_TYPE(data[i]) != NDARRAY) goto python;
    }
    if (PyObject_SetAttr(self, S_SAVED, Py_None) < 0 || PyObject_SetAttr(self, S_BACKEND, CPU) < 0) goto fail;
    outputs = n == 1 ? PyObject_CallMethodOneArg(self, S_FORWARD, data[0])
                     : PyObject_CallMethodObjArgs(self, S_FORWARD, data[0], data[1], NULL);
    if (!outputs) goto fail;
    if (!(needs = PyTuple_New(n))) goto fail;
    int record = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *flag = PyObject_GetAttr(PyTuple_GET_ITEM(args, i), S_REQUIRES_GRAD);
        if (!flag) goto fail;
        PyTuple_SET_ITEM(needs, i, flag);
        if (!record) { /* True in needs: == True, as Python's ``in`` compares */
            int is_true = flag == Py_True ? 1 : PyObject_RichCompareBool(flag, Py_True, Py_EQ);
            if (is_true < 0) goto fail;
            record = is_true;
        }
    }
    if (record) {
        PyObject *enabled = PyObject_GetAttr(STATE, S_ENABLED);
        if (!enabled) goto fail;
        record = PyObject_IsTrue(enabled);
        Py_DECREF(enabled);
        if (record < 0) goto fail;
    }
    PyObject *flag = record ? Py_True : Py_False;
    if (PyTuple_Check(outputs)) {
        result = PyObject_CallFunctionObjArgs(FINISH_MANY, self, args, needs, outputs, flag, NULL);
        goto done;
    }
    if (Py_TYPE(outputs) != NDARRAY) { /* numpy returns scalars, not 0-d arrays, from 0-d inputs */
        PyObject *array = PyObject_CallOneArg(AS_ARRAY, outputs);
        if (!array) goto fail;
        Py_SETREF(outputs, array);
    }
    if (!(result = make_tensor(outputs, flag))) goto fail;
    if (record) {
        PyObject *serial = PyIter_Next(SERIALS), *ref = NULL, *refs = NULL;
        int status = -1;
        if (serial && PyObject_SetAttr(self, S_SERIAL, serial) == 0 && PyObject_SetAttr(self, S_INPUTS, args) == 0 &&
            PyObject_SetAttr(self, S_NEEDS, needs) == 0 && PyObject_SetAttr(result, S_CREATOR, self) == 0 &&
            (ref = PyWeakref_NewRef(result, NULL)) && (refs = PyTuple_Pack(1, ref)))
            status = PyObject_SetAttr(self, S_OUTPUTS, refs);
        Py_XDECREF(serial);
        Py_XDECREF(ref);
        Py_XDECREF(refs);
        if (status < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "itertools.count ran out");
            Py_CLEAR(result);
        }
    } else if (PyObject_SetAttr(self, S_SAVED, Py_None) < 0) {
        Py_CLEAR(result);
    }
    goto done;
python:
    Py_XDECREF(data[0]);
    Py_XDECREF(data[1]);
    return call_python(self, args);
fail:
    Py_CLEAR(result);
done:
    Py_XDECREF(data[0]);
    Py_XDECREF(data[1]);
    Py_XDECREF(needs);
    Py_XDECREF(outputs);
    return result;
}

static PyTypeObject FunctionBase = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gpugrad._engine.FunctionBase",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The base of autograd.Function: calling one records it (in C for CPU tensors).",
    .tp_call = function_call,
    .tp_new = PyType_GenericNew,
};

/* Every handle on the Python side, once, from autograd.bind_tensor_type. */
static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *tensor, *ndarray, *cpu, *state, *serials, *call, *finish, *freed, *accumulate, *output_gradient,
        *gradient_error, *second, *as_array;
    if (!PyArg_ParseTuple(args, "O!O!OOOOOOOOOOO:configure", &PyType_Type, &tensor, &PyType_Type, &ndarray, &cpu,
                          &state, &serials, &call, &finish, &freed, &accumulate, &output_gradient, &gradient_error,
                          &second, &as_array))
        return NULL;
    if (!PyIter_Check(serials)) {
        PyErr_SetString(PyExc_TypeError, "configure: serials must be an iterator");
        return NULL;
    }
    PyObject **slots[] = {(PyObject **)&TENSOR, (PyObject **)&NDARRAY, &CPU, &STATE, &SERIALS, &CALL_PYTHON,
                          &FINISH_MANY, &FREED, &ACCUMULATE_LEAF, &OUTPUT_GRADIENT, &GRADIENT_ERROR,
                          &SECOND_BACKWARD, &AS_ARRAY};
    PyObject *values[] = {tensor, ndarray, cpu, state, serials, call, finish, freed, accumulate, output_gradient,
                          gradient_error, second, as_array};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) Py_XSETREF(*slots[i], Py_NewRef(values[i]));
    Py_RETURN_NONE;
}

/* -- BLAS axpy/axpby for the CPU optimizers (cpu_blas.Blas.axpby without ctypes' cost per call) -- */

typedef void (*axpy_f)(long long, float, const void *, long long, void *, long long);
typedef void (*axpy_d)(long long, double, const void *, long long, void *, long long);
typedef void (*axpby_f)(long long, float, const void *, long long, float, void *, long long);
typedef void (*axpby_d)(long long, double, const void *, long long, double, void *, long long);
static axpy_f SAXPY;
static axpy_d DAXPY;
static axpby_f SAXPBY;
static axpby_d DAXPBY;

static PyObject *set_blas(PyObject *self, PyObject *args) {
    unsigned long long saxpy, daxpy, saxpby, daxpby;
    if (!PyArg_ParseTuple(args, "KKKK:set_blas", &saxpy, &daxpy, &saxpby, &daxpby)) return NULL;
    SAXPY = (axpy_f)(uintptr_t)saxpy;
    DAXPY = (axpy_d)(uintptr_t)daxpy;
    SAXPBY = (axpby_f)(uintptr_t)saxpby;
    DAXPBY = (axpby_d)(uintptr_t)daxpby;
    Py_RETURN_NONE;
}

/* y = alpha x + beta y in place: contiguous float32/float64 buffers of one length and format (the
 * caller has checked the arrays with Blas.applies). The GIL is released around the BLAS call. */
static PyObject *axpby(PyObject *self, PyObject *args) {
    double alpha, beta;
    PyObject *x_obj, *y_obj;
    if (!PyArg_ParseTuple(args, "dOdO:axpby", &alpha, &x_obj, &beta, &y_obj)) return NULL;
    if (!SAXPY) {
        PyErr_SetString(PyExc_RuntimeError, "gpugrad._engine.axpby: set_blas() was not called");
        return NULL;
    }
    Py_buffer x, y;
    if (PyObject_GetBuffer(x_obj, &x, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(y_obj, &y, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    PyObject *result = NULL;
    char kind = x.format ? x.format[x.format[0] == '<' || x.format[0] == '=' ? 1 : 0] : 0;
    char kind_y = y.format ? y.format[y.format[0] == '<' || y.format[0] == '=' ? 1 : 0] : 0;
    if (x.len != y.len || kind != kind_y || (kind != 'f' && kind != 'd') || x.itemsize != (kind == 'f' ? 4 : 8)) {
        PyErr_Format(PyExc_ValueError, "axpby: needs two contiguous float32 or float64 arrays of one dtype and size, "
                     "got formats %s and %s, %zd and %zd bytes", x.format ? x.format : "?", y.format ? y.format : "?",
                     x.len, y.len);
        goto done;
    }
    long long n = (long long)(x.len / x.itemsize);
    if (n) {
        Py_BEGIN_ALLOW_THREADS
        if (kind == 'f') {
            if (beta == 1.0) SAXPY(n, (float)alpha, x.buf, 1, y.buf, 1);
            else SAXPBY(n, (float)alpha, x.buf, 1, (float)beta, y.buf, 1);
        } else {
            if (beta == 1.0) DAXPY(n, alpha, x.buf, 1, y.buf, 1);
            else DAXPBY(n, alpha, x.buf, 1, beta, y.buf, 1);
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&y);
    return result;
}

static PyMethodDef methods[] = {
    {"run_backward", run_backward, METH_VARARGS,
     "run_backward(root, grad, retain_graph): accumulate d(root)/d(leaf) into every leaf's .grad."},
    {"set_blas", set_blas, METH_VARARGS, "set_blas(saxpy, daxpy, saxpby, daxpby): the addresses of the ILP64 cblas functions"},
    {"axpby", axpby, METH_VARARGS, "axpby(alpha, x, beta, y): y = alpha x + beta y in place, through BLAS"},
    {"configure", configure, METH_VARARGS,
     "configure(tensor_type, ndarray, cpu_backend, grad_mode_state, serials, call_python, finish_many, freed, "
     "accumulate_leaf, output_gradient, gradient_error, second_backward, as_array)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_engine", NULL, -1, methods};

PyMODINIT_FUNC PyInit__engine(void) {
#define INTERN(var, text) if (!(var = PyUnicode_InternFromString(text))) return NULL
    INTERN(S_SAVED, "saved");
    INTERN(S_OUTPUTS, "outputs");
    INTERN(S_RETAINING, "retaining");
    INTERN(S_BACKWARD, "backward");
    INTERN(S_INPUTS, "inputs");
    INTERN(S_NEEDS, "needs_input_grad");
    INTERN(S_DATA, "data");
    INTERN(S_SHAPE, "shape");
    INTERN(S_DTYPE, "dtype");
    INTERN(S_CREATOR, "creator");
    INTERN(S_SERIAL, "serial");
    INTERN(S_FORWARD, "forward");
    INTERN(S_REQUIRES_GRAD, "requires_grad");
    INTERN(S_ENABLED, "enabled");
    INTERN(S_BACKEND, "backend");
    INTERN(S_GRAD, "grad");
    INTERN(S_NAME, "name");
    INTERN(S_BASE, "base");
#undef INTERN
    if (!(EMPTY = PyTuple_New(0)) || PyType_Ready(&FunctionBase) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObject(m, "FunctionBase", Py_NewRef((PyObject *)&FunctionBase)) < 0) {
        Py_DECREF(&FunctionBase);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
