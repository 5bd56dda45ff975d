// instance_table: the annotated instances of one subset (what pytal.data.annotations.
// load_instances returns), for the plain single-label case; None for anything else.
#include "tables/tables.h"

namespace pytal::tables {

namespace {

// `{"segment": [s, e] (finite, s <= e), "label": str[, "label_id": None | int >= 0]}`.
bool plain_annotation(PyObject* ann, const Keys& k, double* start, double* end,
                      PyObject** label) {
  if (!PyDict_CheckExact(ann)) return false;
  PyObject* segment = PyDict_GetItemWithError(ann, k.segment);
  *label = PyDict_GetItemWithError(ann, k.label);
  PyObject* label_id = PyDict_GetItemWithError(ann, k.label_id);
  if (PyErr_Occurred()) return false;
  return segment != nullptr && number_pair(segment, start, end) && std::isfinite(*start) &&
         std::isfinite(*end) && *start <= *end && *label != nullptr &&
         PyUnicode_CheckExact(*label) &&
         (label_id == nullptr || label_id == Py_None || non_negative_int(label_id));
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
      double start, end;
      PyObject* label;
      if (!plain_annotation(PyList_GET_ITEM(anns, i), k, &start, &end, &label)) {
        if (PyErr_Occurred()) return nullptr;
        Py_RETURN_NONE;
      }
      if (PyList_Append(labels.get(), label) != 0) return nullptr;
      coords.push_back(start);
      coords.push_back(end);
      video.push_back(index);
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
