// The Python module pytal._C. Importing it registers the operators (static initialisers of
// TORCH_LIBRARY / TORCH_LIBRARY_IMPL); it also reports how it was built.
#include <Python.h>

#ifndef PYTAL_CUDA_ARCHS
#define PYTAL_CUDA_ARCHS ""
#endif

namespace {

PyObject* build_info(PyObject* /*self*/, PyObject* /*args*/) {
#ifdef PYTAL_WITH_CUDA
  const int with_cuda = 1;
#else
  const int with_cuda = 0;
#endif
  return Py_BuildValue("{s:O,s:O,s:s,s:s}", "cpu", Py_True, "cuda",
                       with_cuda ? Py_True : Py_False, "cuda_arch_list", PYTAL_CUDA_ARCHS,
                       "compiler", __VERSION__);
}

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS,
     "dict: which kernels this module was built with (cpu, cuda, cuda_arch_list, compiler)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", "pytal's compiled operators", -1,
                          methods};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module_def); }
