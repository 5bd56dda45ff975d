// detection_table: the detections of a submission's "results" as flat arrays (what
// pytal.evaluation.detection parses), for the plain JSON case; None for anything else.
#include "tables/tables.h"

namespace pytal::tables {

namespace {

// The int64 value of `key` in an index dict built by pytal ({name: int}); -1 when absent.
// False on a non-int value or a Python error.
bool index_of(PyObject* index, PyObject* key, int64_t* out) {
  PyObject* value = PyDict_GetItemWithError(index, key);
  if (value == nullptr) {
    *out = -1;
    return !PyErr_Occurred();
  }
  return exact_int64(value, out);
}

}  // namespace

PyObject* detection_table(PyObject* /*self*/, PyObject* args) {
  PyObject* results;
  PyObject* label_index;
  PyObject* video_index;
  if (!PyArg_ParseTuple(args, "OOO:detection_table", &results, &label_index, &video_index)) {
    return nullptr;
  }
  if (!PyDict_CheckExact(results) || !PyDict_CheckExact(label_index) ||
      !PyDict_CheckExact(video_index)) {
    Py_RETURN_NONE;
  }
  const Keys& k = keys();

  // Pass 1: every value a list; the number of detections.
  Py_ssize_t pos = 0, total = 0;
  PyObject* video_id;
  PyObject* detections;
  while (PyDict_Next(results, &pos, &video_id, &detections)) {
    if (!PyUnicode_CheckExact(video_id) || !PyList_CheckExact(detections)) Py_RETURN_NONE;
    total += PyList_GET_SIZE(detections);
  }
  std::vector<int64_t> video(total), label(total);
  std::vector<double> score(total), segments(2 * total);

  // Pass 2: fill the arrays in file order.
  pos = 0;
  Py_ssize_t row = 0;
  while (PyDict_Next(results, &pos, &video_id, &detections)) {
    int64_t video_row;
    if (!index_of(video_index, video_id, &video_row)) {
      if (PyErr_Occurred()) return nullptr;
      Py_RETURN_NONE;
    }
    const Py_ssize_t count = PyList_GET_SIZE(detections);
    for (Py_ssize_t i = 0; i < count; ++i, ++row) {
      PyObject* d = PyList_GET_ITEM(detections, i);
      if (!PyDict_CheckExact(d)) Py_RETURN_NONE;
      PyObject* name = PyDict_GetItemWithError(d, k.label);
      PyObject* value = PyDict_GetItemWithError(d, k.score);
      PyObject* segment = PyDict_GetItemWithError(d, k.segment);
      if (PyErr_Occurred()) return nullptr;
      if (name == nullptr || value == nullptr || segment == nullptr ||
          !PyUnicode_CheckExact(name) || !exact_number(value, &score[row]) ||
          !number_pair(segment, &segments[2 * row], &segments[2 * row + 1]) ||
          !index_of(label_index, name, &label[row])) {
        if (PyErr_Occurred()) return nullptr;
        Py_RETURN_NONE;
      }
      video[row] = video_row;
    }
  }
  Owned video_bytes(to_bytearray(video));
  Owned label_bytes(to_bytearray(label));
  Owned score_bytes(to_bytearray(score));
  Owned segment_bytes(to_bytearray(segments));
  if (!video_bytes.get() || !label_bytes.get() || !score_bytes.get() || !segment_bytes.get()) {
    return nullptr;
  }
  return PyTuple_Pack(4, video_bytes.get(), label_bytes.get(), score_bytes.get(),
                      segment_bytes.get());
}

}  // namespace pytal::tables
