// The module object of pytal._tables (see tables.h).
#include "tables/tables.h"

namespace {

PyMethodDef methods[] = {
    {"instance_table", pytal::tables::instance_table, METH_VARARGS,
     "instance_table(database, subset) -> (video_ids, video, segments, labels) or None.\n\n"
     "The annotations of the videos of `subset` (file order), one row per label: video_ids\n"
     "list[str]; video bytearray of G int64 indices into video_ids; segments bytearray of 2G\n"
     "float64 seconds (start, end, ...); labels list[str] of G names. None when an entry is\n"
     "not plain JSON of the documented form (the Python walker then decides)."},
    {"detection_table", pytal::tables::detection_table, METH_VARARGS,
     "detection_table(results, label_index, video_index) -> (video, label, score, segments)\n"
     "or None.\n\n"
     "The D detections of a submission's results in file order: video and label bytearrays\n"
     "of int64 indices from the two dicts (-1 when absent), score and segments bytearrays of\n"
     "D and 2D float64. None when anything is not the plain JSON case."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_tables",
                          "Flat arrays from loaded annotation and prediction JSON "
                          "(pytal.data.json_tables wraps it).",
                          -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__tables(void) {
  pytal::tables::keys();
  if (PyErr_Occurred()) return nullptr;
  return PyModule_Create(&module_def);
}
