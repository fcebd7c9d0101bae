// Every adapted tensor type, float and double: the view must point at the container's own memory,
// report the documented batch / per_sample split, be const when the object (or its elements) is const,
// and put element i of sample b where the container's own indexing puts it.
#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <list>
#include <span>
#include <tuple>
#include <type_traits>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "../../examples/custom_tensor.hpp"

#if __has_include(<Eigen/Core>)
#include "diffuse/adapt/eigen.hpp"
#include "diffuse/adapt/eigen_tensor.hpp"
#define DIFFUSE_TEST_EIGEN 1
#endif
#if __has_include(<xtensor/xarray.hpp>)
#include "diffuse/adapt/xtensor.hpp"
#define DIFFUSE_TEST_XTENSOR 1
#endif

namespace {

// Each case owns an object `obj` of the adapted type and knows, through the container's own API,
// how to set element i of sample b (`set`) and where storage begins (`storage`).
// `element` is the view's expected element type for a non-const `obj`.

template <class T>
struct std_vector_case {
    using element = T;
    static constexpr std::size_t batch = 1, per_sample = 12;
    std::vector<T> obj = std::vector<T>(12);
    const void* storage() const { return obj.data(); }
    void set(std::size_t, std::size_t i, T v) { obj[i] = v; }
};

template <class T>
struct std_array_case {
    using element = T;
    static constexpr std::size_t batch = 1, per_sample = 7;
    std::array<T, 7> obj{};
    const void* storage() const { return obj.data(); }
    void set(std::size_t, std::size_t i, T v) { obj[i] = v; }
};

template <class T>
struct std_span_const_case {
    using element = const T;
    static constexpr std::size_t batch = 1, per_sample = 9;
    std::vector<T> owner = std::vector<T>(9);
    std::span<const T> obj{owner};
    const void* storage() const { return owner.data(); }
    void set(std::size_t, std::size_t i, T v) { owner[i] = v; }
};

template <class T>
struct custom_case {
    using element = float;
    static constexpr std::size_t batch = 2, per_sample = 3 * 2 * 4;
    app::image_batch obj{2, 3, 2, 4};
    const void* storage() const { return obj.pixels.data(); }
    void set(std::size_t b, std::size_t i, float v) { obj.at(b, i / 8, (i / 4) % 2, i % 4) = v; }
};

#ifdef DIFFUSE_TEST_EIGEN
template <class T>
struct eigen_matrix_case {  // column-major: a column is a sample
    using element = T;
    static constexpr std::size_t batch = 4, per_sample = 3;
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> obj{3, 4};
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(i), Eigen::Index(b)) = v; }
};

template <class T>
struct eigen_matrix_row_case {  // row-major: a row is a sample
    using element = T;
    static constexpr std::size_t batch = 4, per_sample = 3;
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> obj{4, 3};
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(b), Eigen::Index(i)) = v; }
};

template <class T>
struct eigen_array_fixed_case {
    using element = T;
    static constexpr std::size_t batch = 5, per_sample = 2;
    Eigen::Array<T, 2, 5> obj;
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(i), Eigen::Index(b)) = v; }
};

template <class T>
struct eigen_array_row_case {
    using element = T;
    static constexpr std::size_t batch = 2, per_sample = 5;
    Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> obj{2, 5};
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(b), Eigen::Index(i)) = v; }
};

template <class T>
struct eigen_map_case {
    using element = T;
    static constexpr std::size_t batch = 4, per_sample = 3;
    std::vector<T> owner = std::vector<T>(12);
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>> obj{owner.data(), 3, 4};
    const void* storage() const { return owner.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(i), Eigen::Index(b)) = v; }
};

template <class T>
struct eigen_map_const_row_case {
    using element = const T;
    static constexpr std::size_t batch = 3, per_sample = 4;
    std::vector<T> owner = std::vector<T>(12);
    Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> obj{owner.data(), 3, 4};
    const void* storage() const { return owner.data(); }
    void set(std::size_t b, std::size_t i, T v) { owner[b * 4 + i] = v; }
};

template <class T>
struct eigen_tensor_case {  // column-major: the last dimension is the batch
    using element = T;
    static constexpr std::size_t batch = 5, per_sample = 6;
    Eigen::Tensor<T, 3> obj{2, 3, 5};
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(i % 2), Eigen::Index(i / 2), Eigen::Index(b)) = v; }
};

template <class T>
struct eigen_tensor_row_case {  // row-major: the first dimension is the batch
    using element = T;
    static constexpr std::size_t batch = 5, per_sample = 6;
    Eigen::Tensor<T, 3, Eigen::RowMajor> obj{5, 2, 3};
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(b), Eigen::Index(i / 3), Eigen::Index(i % 3)) = v; }
};

template <class T>
struct eigen_tensor_fixed_case {
    using element = T;
    static constexpr std::size_t batch = 3, per_sample = 4;
    Eigen::TensorFixedSize<T, Eigen::Sizes<4, 3>> obj;
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(i), Eigen::Index(b)) = v; }
};

template <class T>
struct eigen_tensor_map_case {
    using element = T;
    static constexpr std::size_t batch = 4, per_sample = 3;
    std::vector<T> owner = std::vector<T>(12);
    Eigen::TensorMap<Eigen::Tensor<T, 2>> obj{owner.data(), 3, 4};
    const void* storage() const { return owner.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(Eigen::Index(i), Eigen::Index(b)) = v; }
};

template <class T>
struct eigen_tensor_map_const_row_case {
    using element = const T;
    static constexpr std::size_t batch = 4, per_sample = 3;
    std::vector<T> owner = std::vector<T>(12);
    Eigen::TensorMap<const Eigen::Tensor<T, 2, Eigen::RowMajor>> obj{owner.data(), 4, 3};
    const void* storage() const { return owner.data(); }
    void set(std::size_t b, std::size_t i, T v) { owner[b * 3 + i] = v; }
};
#endif

#ifdef DIFFUSE_TEST_XTENSOR
template <class T>
struct xt_xarray_case {  // row-major: shape[0] is the batch
    using element = T;
    static constexpr std::size_t batch = 4, per_sample = 6;
    xt::xarray<T> obj = xt::xarray<T>::from_shape({4, 2, 3});
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(b, i / 3, i % 3) = v; }
};

template <class T>
struct xt_xarray_col_case {  // column-major: the last extent is the batch
    using element = T;
    static constexpr std::size_t batch = 4, per_sample = 6;
    xt::xarray<T, xt::layout_type::column_major> obj =
        xt::xarray<T, xt::layout_type::column_major>::from_shape({2, 3, 4});
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(i % 2, i / 2, b) = v; }
};

template <class T>
struct xt_xarray_dynamic_case {  // dynamic layout holding contiguous column-major strides
    using element = T;
    static constexpr std::size_t batch = 3, per_sample = 2;
    xt::xarray<T, xt::layout_type::dynamic> obj{std::vector<std::size_t>{2, 3}, xt::layout_type::column_major};
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(i, b) = v; }
};

template <class T>
struct xt_xtensor_case {
    using element = T;
    static constexpr std::size_t batch = 5, per_sample = 2;
    xt::xtensor<T, 2> obj = xt::xtensor<T, 2>::from_shape({5, 2});
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(b, i) = v; }
};

template <class T>
struct xt_fixed_case {
    using element = T;
    static constexpr std::size_t batch = 3, per_sample = 4;
    xt::xtensor_fixed<T, xt::xshape<3, 4>> obj;
    const void* storage() const { return obj.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(b, i) = v; }
};

template <class T>
struct xt_adapt_vector_case {  // xarray_adaptor over a std::vector, row-major
    using element = T;
    static constexpr std::size_t batch = 4, per_sample = 3;
    std::vector<T> owner = std::vector<T>(12);
    decltype(xt::adapt(owner, std::vector<std::size_t>{4, 3})) obj = xt::adapt(owner, std::vector<std::size_t>{4, 3});
    const void* storage() const { return owner.data(); }
    void set(std::size_t b, std::size_t i, T v) { obj(b, i) = v; }
};

template <class T>
struct xt_adapt_const_col_case {  // xtensor_adaptor over const memory, column-major
    using element = const T;
    static constexpr std::size_t batch = 4, per_sample = 3;
    std::vector<T> owner = std::vector<T>(12);
    const T* p = owner.data();
    decltype(xt::adapt<xt::layout_type::column_major>(p, 12, xt::no_ownership(), std::array<std::size_t, 2>{3, 4}))
        obj = xt::adapt<xt::layout_type::column_major>(p, 12, xt::no_ownership(), std::array<std::size_t, 2>{3, 4});
    const void* storage() const { return owner.data(); }
    void set(std::size_t b, std::size_t i, T v) { owner[b * 3 + i] = v; }
};
#endif

template <template <class> class... Cases>
struct cases_of {
    using type = decltype(std::tuple_cat(std::tuple<Cases<float>, Cases<double>>{}...));
};

using all_cases = decltype(std::tuple_cat(
    std::declval<cases_of<std_vector_case, std_array_case, std_span_const_case>::type>(),
    std::declval<std::tuple<custom_case<float>>>()
#ifdef DIFFUSE_TEST_EIGEN
        ,
    std::declval<cases_of<eigen_matrix_case, eigen_matrix_row_case, eigen_array_fixed_case, eigen_array_row_case,
                          eigen_map_case, eigen_map_const_row_case, eigen_tensor_case, eigen_tensor_row_case,
                          eigen_tensor_fixed_case, eigen_tensor_map_case, eigen_tensor_map_const_row_case>::type>()
#endif
#ifdef DIFFUSE_TEST_XTENSOR
        ,
    std::declval<cases_of<xt_xarray_case, xt_xarray_col_case, xt_xarray_dynamic_case, xt_xtensor_case,
                          xt_fixed_case, xt_adapt_vector_case, xt_adapt_const_col_case>::type>()
#endif
        ));

}  // namespace

TEMPLATE_LIST_TEST_CASE("adapted tensors give zero-copy, sample-major views", "[adapt]", all_cases) {
    using scalar = std::remove_const_t<typename TestType::element>;
    TestType c;
    for (std::size_t b = 0; b < TestType::batch; ++b) {
        for (std::size_t i = 0; i < TestType::per_sample; ++i) c.set(b, i, static_cast<scalar>(100 * b + i));
    }

    auto v = diffuse::view(c.obj);
    STATIC_REQUIRE(std::is_same_v<decltype(v), diffuse::tensor_view<typename TestType::element>>);
    STATIC_REQUIRE(diffuse::tensor<decltype(c.obj)>);
    CHECK(static_cast<const void*>(v.data) == c.storage());
    CHECK(v.batch == TestType::batch);
    CHECK(v.per_sample == TestType::per_sample);
    for (std::size_t b = 0; b < TestType::batch; ++b) {
        for (std::size_t i = 0; i < TestType::per_sample; ++i) {
            INFO("sample " << b << ", element " << i);
            CHECK(v.sample(b)[i] == static_cast<scalar>(100 * b + i));
        }
    }

    // A const object gives a view of const elements over the same memory.
    const auto& cobj = c.obj;
    auto cv = diffuse::view(cobj);
    STATIC_REQUIRE(std::is_same_v<decltype(cv), diffuse::tensor_view<const scalar>>);
    CHECK(static_cast<const void*>(cv.data) == c.storage());
    CHECK(cv.batch == TestType::batch);
    CHECK(cv.per_sample == TestType::per_sample);

    // Writing through a mutable view is seen by the container.
    if constexpr (!std::is_const_v<typename TestType::element>) {
        v.sample(TestType::batch - 1)[TestType::per_sample - 1] = scalar(-7);
        const auto last = v.size() - 1;
        CHECK(cv[last] == scalar(-7));
    }
}

TEST_CASE("types that are not tensors are not adapted", "[adapt]") {
    STATIC_REQUIRE(!diffuse::tensor<std::list<float>>);
    STATIC_REQUIRE(!diffuse::tensor<std::vector<int>>);
#ifdef DIFFUSE_TEST_EIGEN
    STATIC_REQUIRE(!diffuse::tensor<Eigen::MatrixXi>);
    using sum = std::remove_cvref_t<decltype(Eigen::MatrixXf() + Eigen::MatrixXf())>;
    STATIC_REQUIRE(!diffuse::tensor<sum>);
    STATIC_REQUIRE(diffuse::detail::eigen_expression<sum>);
    STATIC_REQUIRE(diffuse::detail::eigen_expression<std::remove_cvref_t<decltype(Eigen::MatrixXf().transpose())>>);
    STATIC_REQUIRE(!diffuse::detail::eigen_expression<Eigen::MatrixXf>);
    STATIC_REQUIRE(!diffuse::detail::eigen_expression<Eigen::MatrixXi>);
    using strided = Eigen::Map<Eigen::MatrixXf, 0, Eigen::OuterStride<>>;
    STATIC_REQUIRE(!diffuse::tensor<strided>);
    STATIC_REQUIRE(diffuse::detail::eigen_strided_map<strided>);
    STATIC_REQUIRE(!diffuse::detail::eigen_strided_map<Eigen::Map<Eigen::MatrixXf>>);
    using tensor_sum = std::remove_cvref_t<decltype(Eigen::Tensor<float, 2>() + Eigen::Tensor<float, 2>())>;
    STATIC_REQUIRE(!diffuse::tensor<tensor_sum>);
    STATIC_REQUIRE(diffuse::detail::eigen_tensor_expression<tensor_sum>);
    STATIC_REQUIRE(!diffuse::detail::eigen_tensor_expression<Eigen::Tensor<float, 2>>);
    STATIC_REQUIRE(!diffuse::detail::eigen_tensor_expression<Eigen::TensorMap<Eigen::Tensor<float, 2>>>);
    STATIC_REQUIRE(!diffuse::detail::eigen_expression<Eigen::Tensor<float, 2>>);
#endif
#ifdef DIFFUSE_TEST_XTENSOR
    STATIC_REQUIRE(!diffuse::tensor<xt::xarray<int>>);
    xt::xarray<float> a{1.0f, 2.0f};
    STATIC_REQUIRE(!diffuse::tensor<decltype(a + a)>);
    STATIC_REQUIRE(diffuse::detail::xt_expression<std::remove_cvref_t<decltype(a + a)>>);
#endif
}

TEST_CASE("edge shapes: empty batches and rank-0 tensors", "[adapt]") {
#ifdef DIFFUSE_TEST_EIGEN
    Eigen::MatrixXd empty(3, 0);
    auto e = diffuse::view(empty);
    CHECK(e.batch == 0);
    CHECK(e.per_sample == 3);
    Eigen::Tensor<float, 3> t0(2, 0, 4);  // per_sample is 2 * 0, not size / batch
    auto vt0 = diffuse::view(t0);
    CHECK(vt0.batch == 4);
    CHECK(vt0.per_sample == 0);
    Eigen::Tensor<double, 3, Eigen::RowMajor> tb0(0, 2, 3);
    auto vtb0 = diffuse::view(tb0);
    CHECK(vtb0.batch == 0);
    CHECK(vtb0.per_sample == 6);
    Eigen::Tensor<float, 0> scalar_tensor;
    auto s = diffuse::view(scalar_tensor);
    CHECK(s.batch == 1);
    CHECK(s.per_sample == 1);
    Eigen::RowVectorXf row(5);
    auto r = diffuse::view(row);
    CHECK(r.batch == 1);
    CHECK(r.per_sample == 5);
    auto bm = diffuse::batched(Eigen::MatrixXf(4, 3), 6);  // a 12-element matrix seen as 6 samples
    CHECK(bm.per_sample == 2);
#endif
#ifdef DIFFUSE_TEST_XTENSOR
    xt::xarray<float> x0 = 2.5f;
    auto v0 = diffuse::view(x0);
    CHECK(v0.batch == 1);
    CHECK(v0.per_sample == 1);
    CHECK(v0[0] == 2.5f);
    auto xe = xt::xarray<double>::from_shape({0, 3});
    auto ve = diffuse::view(xe);
    CHECK(ve.batch == 0);
    CHECK(ve.per_sample == 3);
#endif
}

#ifdef DIFFUSE_TEST_XTENSOR
TEST_CASE("xtensor containers that are not contiguous are rejected at run time", "[adapt]") {
    std::vector<float> buf(24);
    // Every other element of a row: strides (8, 2) are not contiguous in either order.
    auto strided = xt::adapt(buf, std::vector<std::size_t>{3, 4}, std::vector<std::size_t>{8, 2});
    CHECK_THROWS_AS(diffuse::view(strided), diffuse::error);
    CHECK_THROWS_WITH(diffuse::view(strided), Catch::Contains("layout = dynamic with shape (3, 4) and strides (8, 2)") &&
                                               Catch::Contains("row_major"));
    // A transposed layout written as explicit strides is fine: it is contiguous column-major.
    auto transposed = xt::adapt(buf, std::vector<std::size_t>{4, 6}, std::vector<std::size_t>{1, 4});
    auto vt = diffuse::view(transposed);
    CHECK(vt.batch == 6);
    CHECK(vt.per_sample == 4);
    // A dynamic-layout array resized to non-contiguous strides.
    xt::xarray<double, xt::layout_type::dynamic> d;
    d.resize({2, 2}, {3, 1});
    CHECK_THROWS_AS(diffuse::view(d), diffuse::error);
}
#endif

TEST_CASE("the custom tensor example validates its own fields", "[adapt]") {
    app::image_batch broken(2, 1, 2, 2);
    broken.n = 3;  // now disagrees with pixels.size()
    CHECK_THROWS_AS(diffuse::view(broken), std::invalid_argument);
    app::image_batch ok(2, 1, 2, 2);
    CHECK(diffuse::batched(ok, 4).per_sample == 2);
}
