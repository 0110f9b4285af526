// bind_util.h: argument checks shared by the binding files. They only
// inspect arrays (dtype, contiguity, shape, writability) and raise Python
// errors that name the argument; they never compute anything.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "common/macros.h"
#include "common/shape.h"

namespace striate {
namespace py = pybind11;

inline std::string shape_string(const std::vector<index_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

inline std::vector<index_t> shape_of(const py::array& a) {
  return std::vector<index_t>(a.shape(), a.shape() + a.ndim());
}

inline void require(bool ok, const std::string& message) {
  if (!ok) throw py::value_error(message);
}

// A kernel size, stride, padding, dilation or output length must lie in
// [minimum, kMaxGeometryArgument] (common/shape.h), so that no index formed
// from it can overflow.
inline void require_geometry(const std::string& op, const char* name, index_t v, index_t minimum) {
  if (!geometry_argument_ok(v, minimum))
    throw py::value_error(op + ": " + name + " must be in [" + std::to_string(minimum) + ", " +
                          std::to_string(kMaxGeometryArgument) + "], got " + std::to_string(v));
}

// An output length from a shape.h formula: kSizeOverflow becomes an error.
inline index_t require_size(const std::string& op, index_t size) {
  if (size == kSizeOverflow)
    throw py::value_error(op + ": the output size overflows int64 (arguments too large)");
  return size;
}

// Checks dtype, C-contiguity and (optionally) the exact shape of an array.
inline void check_array(const char* op, const char* name, const py::array& a,
                        const py::dtype& dtype, const std::vector<index_t>& shape,
                        bool writable = false) {
  if (!a.dtype().is(dtype))
    throw py::type_error(std::string(op) + ": " + name + " must have dtype " +
                         std::string(py::str(dtype)) + ", got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous");
  if (writable && !a.writeable())
    throw py::value_error(std::string(op) + ": " + name + " must be writable");
  if (!shape.empty() && shape_of(a) != shape)
    throw py::value_error(std::string(op) + ": " + name + " must have shape " +
                          shape_string(shape) + ", got " + shape_string(shape_of(a)));
}

inline void check_ndim(const char* op, const char* name, const py::array& a, int ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(op) + ": " + name + " must be " + std::to_string(ndim) +
                          "-D, got " + std::to_string(a.ndim()) + "-D");
}

// An optional output: None gives nullptr, otherwise the checked array's
// data (holder keeps the array alive while the kernel runs).
template <typename T>
T* optional_output(const char* op, const char* name, const py::object& o, py::array& holder,
                   const std::vector<index_t>& shape) {
  if (o.is_none()) return nullptr;
  holder = o.cast<py::array>();
  check_array(op, name, holder, py::dtype::of<T>(), shape, true);
  return static_cast<T*>(holder.mutable_data());
}

// An optional input (a bias): None gives nullptr, otherwise the checked
// array's data (holder keeps the array alive while the kernel runs).
template <typename T>
const T* optional_input(const char* op, const char* name, const py::object& o, py::array& holder,
                        const std::vector<index_t>& shape) {
  if (o.is_none()) return nullptr;
  holder = o.cast<py::array>();
  check_array(op, name, holder, py::dtype::of<T>(), shape);
  return static_cast<const T*>(holder.data());
}

// Calls f(T{}) with T = float or double according to x's dtype.
template <typename F>
auto dispatch_float(const char* op, const py::array& x, F f) {
  if (x.dtype().is(py::dtype::of<float>())) return f(float{});
  if (x.dtype().is(py::dtype::of<double>())) return f(double{});
  throw py::type_error(std::string(op) + ": expected float32 or float64 input, got " +
                       std::string(py::str(x.dtype())));
}

template <typename T>
T* mut(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
template <typename T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

}  // namespace striate
