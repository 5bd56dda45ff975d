// instance_table: the annotated instances of one subset (what pytal.data.annotations.
// load_instances returns), one row per label of each annotation, for plain JSON; None for
// anything else.
#include "tables/tables.h"

namespace pytal::tables {

namespace {

// `label_id` absent or None, or one int >= 0 per label (a bare int for one label, else a list).
bool plain_label_ids(PyObject* label_id, Py_ssize_t num_labels) {
  if (label_id == nullptr || label_id == Py_None) return true;
  if (!PyList_CheckExact(label_id)) return num_labels == 1 && non_negative_int(label_id);
  if (PyList_GET_SIZE(label_id) != num_labels) return false;
  for (Py_ssize_t i = 0; i < num_labels; ++i) {
    if (!non_negative_int(PyList_GET_ITEM(label_id, i))) return false;
  }
  return true;
}

// One annotation `{"segment": [s, e] (finite, s <= e), "label": str or non-empty [str, ...],
// ["label_id": ...]}` appended as one row per label; false (nothing appended) when it is not
// of that form or on a Python error.
bool append_annotation(PyObject* ann, const Keys& k, int64_t video_index, PyObject* labels,
                       std::vector<int64_t>& video, std::vector<double>& coords) {
  if (!PyDict_CheckExact(ann)) return false;
  PyObject* segment = PyDict_GetItemWithError(ann, k.segment);
  PyObject* label = PyDict_GetItemWithError(ann, k.label);
  PyObject* label_id = PyDict_GetItemWithError(ann, k.label_id);
  double start, end;
  if (PyErr_Occurred() || segment == nullptr || label == nullptr ||
      !number_pair(segment, &start, &end) || !std::isfinite(start) || !std::isfinite(end) ||
      start > end) {
    return false;
  }
  const bool single = PyUnicode_CheckExact(label);
  if (!single && !(PyList_CheckExact(label) && PyList_GET_SIZE(label) > 0)) return false;
  const Py_ssize_t count = single ? 1 : PyList_GET_SIZE(label);
  for (Py_ssize_t i = 0; !single && i < count; ++i) {
    if (!PyUnicode_CheckExact(PyList_GET_ITEM(label, i))) return false;
  }
  if (!plain_label_ids(label_id, count)) return false;
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (PyList_Append(labels, single ? label : PyList_GET_ITEM(label, i)) != 0) return false;
    coords.push_back(start);
    coords.push_back(end);
    video.push_back(video_index);
  }
  return true;
}

}  // namespace

PyObject* instance_table(PyObject* /*self*/, PyObject* args) {
  PyObject* database;
  PyObject* subset;
  if (!PyArg_ParseTuple(args, "OO:instance_table", &database, &subset)) return nullptr;
  if (!PyDict_CheckExact(database) || !PyUnicode_CheckExact(subset)) Py_RETURN_NONE;
  const Keys& k = keys();
  Owned video_ids(PyList_New(0));
  Owned labels(PyList_New(0));
  if (video_ids.get() == nullptr || labels.get() == nullptr) return nullptr;
  std::vector<int64_t> video;
  std::vector<double> coords;

  Py_ssize_t pos = 0;
  PyObject* video_id;
  PyObject* entry;
  while (PyDict_Next(database, &pos, &video_id, &entry)) {
    if (!PyUnicode_CheckExact(video_id) || !PyDict_CheckExact(entry)) Py_RETURN_NONE;
    PyObject* name = PyDict_GetItemWithError(entry, k.subset);
    if (name == nullptr || !PyUnicode_CheckExact(name)) {
      if (PyErr_Occurred()) return nullptr;
      Py_RETURN_NONE;                                 // the Python walker names the video
    }
    const int order = PyUnicode_Compare(name, subset);
    if (order == -1 && PyErr_Occurred()) return nullptr;
    if (order != 0) continue;
    PyObject* anns = PyDict_GetItemWithError(entry, k.annotations);
    if (anns == nullptr && PyErr_Occurred()) return nullptr;
    if (anns != nullptr && !PyList_CheckExact(anns)) Py_RETURN_NONE;
    const int64_t index = PyList_GET_SIZE(video_ids.get());
    const Py_ssize_t count = anns == nullptr ? 0 : PyList_GET_SIZE(anns);
    for (Py_ssize_t i = 0; i < count; ++i) {
      if (!append_annotation(PyList_GET_ITEM(anns, i), k, index, labels.get(), video, coords)) {
        if (PyErr_Occurred()) return nullptr;
        Py_RETURN_NONE;
      }
    }
    if (PyList_Append(video_ids.get(), video_id) != 0) return nullptr;
  }
  if (PyList_GET_SIZE(video_ids.get()) == 0) Py_RETURN_NONE;  // unknown subset: Python says so
  Owned video_bytes(to_bytearray(video));
  Owned coord_bytes(to_bytearray(coords));
  if (video_bytes.get() == nullptr || coord_bytes.get() == nullptr) return nullptr;
  return PyTuple_Pack(4, video_ids.get(), video_bytes.get(), coord_bytes.get(), labels.get());
}

}  // namespace pytal::tables
