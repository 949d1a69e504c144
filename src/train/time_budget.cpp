#include "train/time_budget.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace aneura {

TimeBudget::TimeBudget(double budget_s, bool has_validation, SteadyClock::time_point start)
    : budget_s_(budget_s), has_validation_(has_validation), start_(start) {}

bool TimeBudget::no_room_for_another(double train_s) const {
  return enabled() && elapsed_s() + train_s + validation_s_ > budget_s_;
}

bool TimeBudget::periodic_validation(int epoch, int first) const {
  if (!enabled()) return true;
  return epoch > first && (epoch + 1 - first) % validate_every_ == 0;
}

int TimeBudget::validation_interval(double train_s) const {
  return std::max(1, static_cast<int>(std::ceil(validation_s_ / (kValidationShare * std::max(1e-3, train_s)))));
}

bool TimeBudget::retime_validation(int epoch, int first) const {
  return enabled() && has_validation_ && first == 0 && epoch == kRefitEpochs - 1;
}

void TimeBudget::retimed_validation_s(double s, double train_s) {
  if (!(s < validation_s_)) return;
  validation_s_ = s;
  validate_every_ = validation_interval(train_s);
}

int TimeBudget::fit_schedule(int epoch, int first, double train_s, bool validated_last, int schedule_epochs,
                             int max_epochs) {
  if (!enabled()) return schedule_epochs;
  if (epoch == first && has_validation_) validate_every_ = validation_interval(train_s);
  if (first != 0) return schedule_epochs;
  if (epoch > 0) {
    recent_train_s_.push_back(train_s);
    if (recent_train_s_.size() > kRefitEpochs - 1) recent_train_s_.erase(recent_train_s_.begin());
  }
  const bool initial = epoch < kRefitEpochs;
  if (!initial && 2 * (epoch + 1) > schedule_epochs) return schedule_epochs;
  double train_mean = train_s;
  if (epoch > 0) {
    train_mean = 0;
    for (const double s : recent_train_s_) train_mean += s;
    train_mean /= static_cast<double>(recent_train_s_.size());
  }
  const int every = initial || !has_validation_ ? validate_every_ : validation_interval(train_mean);
  const double per_epoch = train_mean + (has_validation_ ? validation_s_ / every : 0.0);
  const double remaining = budget_s_ - elapsed_s() - (has_validation_ && !validated_last ? validation_s_ : 0.0);
  const int fit = std::clamp(epoch + 1 + static_cast<int>(std::max(0.0, remaining) / per_epoch), epoch + 1, max_epochs);
  if (!initial && std::abs(fit - schedule_epochs) < kRefitMargin) return schedule_epochs;
  validate_every_ = every;
  if (fit != schedule_epochs)
    spdlog::info(
        "time budget {} s: the schedule is {} to {} epochs ({:.1f} s of training per epoch, validation every {} "
        "epoch(s) and after the last, {:.1f} s each)",
        budget_s_, epoch == 0 ? "fitted" : "refitted", fit, train_mean, validate_every_, validation_s_);
  return fit;
}

}  // namespace aneura
