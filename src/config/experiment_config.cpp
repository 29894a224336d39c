#include "config/experiment_config.h"

namespace abmll {

#define ABMLL_ENUM_NAMES(E, ...)                                       \
  template <>                                                          \
  const std::vector<std::pair<E, std::string_view>>& enum_names<E>() { \
    static const std::vector<std::pair<E, std::string_view>> names = {__VA_ARGS__}; \
    return names;                                                      \
  }

ABMLL_ENUM_NAMES(Method, {Method::pretrained, "pretrained"}, {Method::icl, "icl"}, {Method::lora, "lora"},
                 {Method::reptile, "reptile"}, {Method::fomaml, "fomaml"}, {Method::abmll, "abmll"},
                 {Method::abmll_icl, "abmll_icl"})
ABMLL_ENUM_NAMES(PosteriorFamily, {PosteriorFamily::factor, "factor"}, {PosteriorFamily::weight, "weight"})
ABMLL_ENUM_NAMES(WeightScale, {WeightScale::linear, "linear"}, {WeightScale::softplus, "softplus"})
ABMLL_ENUM_NAMES(InnerOptimizer, {InnerOptimizer::sgd, "sgd"}, {InnerOptimizer::adam, "adam"})
ABMLL_ENUM_NAMES(ModelDType, {ModelDType::auto_, "auto"}, {ModelDType::float32, "float32"},
                 {ModelDType::bfloat16, "bfloat16"}, {ModelDType::float16, "float16"})
ABMLL_ENUM_NAMES(DataFormat, {DataFormat::crossfit, "crossfit"}, {DataFormat::unifiedqa, "unifiedqa"},
                 {DataFormat::jsonl, "jsonl"})
ABMLL_ENUM_NAMES(LrSchedule, {LrSchedule::cosine, "cosine"}, {LrSchedule::linear, "linear"},
                 {LrSchedule::constant, "constant"})
ABMLL_ENUM_NAMES(EvalSplit, {EvalSplit::test, "test"}, {EvalSplit::dev, "dev"})
ABMLL_ENUM_NAMES(ValidationTasks, {ValidationTasks::held_out, "held_out"}, {ValidationTasks::train, "train"})
ABMLL_ENUM_NAMES(ValidationMetric, {ValidationMetric::nll, "nll"}, {ValidationMetric::accuracy, "accuracy"},
                 {ValidationMetric::ece, "ece"}, {ValidationMetric::brier, "brier"})

#undef ABMLL_ENUM_NAMES

}  // namespace abmll
