// pytal._tables: flat arrays from JSON-shaped Python values (what json.load returns), for the
// two hot loops of evaluation: the annotations of one subset and the detections of a
// submission. A plain CPython module (no torch), so `pytal.evaluation` stays importable and
// fast to start without torch.
//
// Contract of every function here: it handles the common, well-formed case exactly as the
// Python walker it stands in for (pytal.data.annotations.load_instances,
// pytal.evaluation.detection._parse_results; wrapped by pytal/data/json_tables.py), and
// returns None for anything else (a missing key, a tuple where JSON gives a list, a numpy
// scalar, a multi-label annotation, ...). The caller then runs its Python walker, which is the specification: it accepts what
// it accepts and raises the errors that name the field. Only exact dict / list / str / float /
// int (not bool) objects are read, so no Python code (no __hash__, __eq__, __float__) runs
// and borrowed references stay valid.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace pytal::tables {

PyObject* instance_table(PyObject* self, PyObject* args);
PyObject* detection_table(PyObject* self, PyObject* args);

// Interned key strings, created once.
struct Keys {
  PyObject* subset;
  PyObject* annotations;
  PyObject* segment;
  PyObject* label;
  PyObject* label_id;
  PyObject* score;
};

inline const Keys& keys() {
  static const Keys k{PyUnicode_InternFromString("subset"),
                      PyUnicode_InternFromString("annotations"),
                      PyUnicode_InternFromString("segment"),
                      PyUnicode_InternFromString("label"),
                      PyUnicode_InternFromString("label_id"),
                      PyUnicode_InternFromString("score")};
  return k;
}

// A new reference that is released on scope exit unless handed over with release().
class Owned {
 public:
  explicit Owned(PyObject* object) : object_(object) {}
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() { Py_XDECREF(object_); }
  PyObject* get() const { return object_; }
  PyObject* release() {
    PyObject* object = object_;
    object_ = nullptr;
    return object;
  }

 private:
  PyObject* object_;
};

// Integers up to 2^53 in magnitude convert to double exactly (so comparisons agree with
// Python's exact int/float comparisons); larger ones are left to the Python walker.
constexpr long long kExactIntLimit = 1LL << 53;

// `value` as a double when it is exactly a float, or exactly an int (not a bool) within
// kExactIntLimit; false otherwise, with no Python error left set.
inline bool exact_number(PyObject* value, double* out) {
  if (PyFloat_CheckExact(value)) {
    *out = PyFloat_AS_DOUBLE(value);
    return true;
  }
  if (!PyLong_CheckExact(value)) return false;
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
  if (overflow != 0 || v > kExactIntLimit || v < -kExactIntLimit) return false;
  *out = static_cast<double>(v);
  return true;
}

// An exact int >= 0 (any size).
inline bool non_negative_int(PyObject* value) {
  if (!PyLong_CheckExact(value)) return false;
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
  return overflow > 0 || (overflow == 0 && v >= 0);
}

// The value of an exact int that fits in int64 (the index dicts pytal builds); false otherwise.
inline bool exact_int64(PyObject* value, int64_t* out) {
  if (!PyLong_CheckExact(value)) return false;
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
  if (overflow != 0) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

// `[start, end]` as an exact list of two exact numbers.
inline bool number_pair(PyObject* value, double* first, double* second) {
  return PyList_CheckExact(value) && PyList_GET_SIZE(value) == 2 &&
         exact_number(PyList_GET_ITEM(value, 0), first) &&
         exact_number(PyList_GET_ITEM(value, 1), second);
}

// A bytearray holding a copy of `values` (numpy.frombuffer reads it without another copy).
template <typename T>
PyObject* to_bytearray(const std::vector<T>& values) {
  return PyByteArray_FromStringAndSize(reinterpret_cast<const char*>(values.data()),
                                       static_cast<Py_ssize_t>(values.size() * sizeof(T)));
}

}  // namespace pytal::tables
