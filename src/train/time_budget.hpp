// A training run's time budget. A budgeted run fits its learning-rate schedule to the epochs the
// budget holds (so the rate still decays to its end), validates only every few epochs (a windowed
// validation slides over every validation case's ROI, often several epochs' worth of training),
// never after its first epoch, and always after its last, and stops when another epoch and a
// validation would not fit. An unbudgeted run validates after every epoch and keeps its schedule.
#pragma once
#include <vector>

#include "core/timer.hpp"

namespace aneura {

class TimeBudget {
 public:
  // Validations take at most this share of the training time.
  static constexpr double kValidationShare = 0.2;
  // A fresh run refits its schedule after each epoch up to this one, from the mean training time
  // of the epochs after the first (which warms up and is slower: fitted on it alone, a demo run
  // left a fifth of its budget unused).
  static constexpr int kRefitEpochs = 5;
  // Later, through the first half of its schedule, it refits it (and the validation interval) from
  // the mean of its last kRefitEpochs - 1 epochs when that moves the end by at least this many
  // epochs: a run whose first epochs shared the machine (a dots run beside a compiler fitted 29
  // epochs and stopped 248 s before its 1800 s) gets its budget back, one on a machine that got
  // busy ends its schedule inside the budget. The second half keeps its schedule (the learning
  // rate decays to its end).
  static constexpr int kRefitMargin = 2;

  // budget_s <= 0: none. The clock runs from `start` (the run's set-up counts).
  TimeBudget(double budget_s, bool has_validation, SteadyClock::time_point start = SteadyClock::now());
  bool enabled() const { return budget_s_ > 0; }
  double budget_s() const { return budget_s_; }
  // Seconds of a resumed run before this invocation.
  void set_elapsed_before(double s) { elapsed_before_s_ = s; }
  double elapsed_s() const { return elapsed_before_s_ + seconds_since(start_); }

  // A validation's cost: first estimated (one case timed, times the cases), then each validation's own.
  void set_validation_s(double s) { validation_s_ = s; }
  double validation_s() const { return validation_s_; }
  int validate_every() const { return validate_every_; }
  // The first estimate (one case timed before the first epoch) may be taken before warm-up or while
  // the machine is busy: a 1 mm run started beside the test suite timed 63 s instead of ~7, kept
  // 754 s for its last validation and fitted 38 epochs instead of 111. So a fresh budgeted run times
  // one case again after its last refit epoch (`retime_validation`); `retimed_validation_s` keeps
  // the smaller estimate and refits the validation interval to it (`train_s`: that epoch's training).
  bool retime_validation(int epoch, int first) const;
  void retimed_validation_s(double s, double train_s);

  // After an epoch that trained for `train_s`: true when it is the run's last, because another one
  // like it and a validation would overrun the budget (always false without a budget).
  bool no_room_for_another(double train_s) const;
  // Whether epoch `epoch` (0-based; this invocation started at `first`) validates without being the last.
  bool periodic_validation(int epoch, int first) const;
  // After epoch `epoch` (0-based; this invocation started at `first`; `validated_last`: it was the
  // last and validated): the validation interval (after the first epoch) and the schedule's length
  // refitted to the budget (epochs up to kRefitEpochs of a fresh run, then as kRefitMargin says),
  // between epoch + 1 and `max_epochs`. Returns the schedule's length; `schedule_epochs` unchanged
  // without a budget.
  int fit_schedule(int epoch, int first, double train_s, bool validated_last, int schedule_epochs, int max_epochs);

 private:
  // Epochs between validations so that they take at most kValidationShare of epochs of `train_s`.
  int validation_interval(double train_s) const;
  double budget_s_;
  bool has_validation_;
  SteadyClock::time_point start_;
  double elapsed_before_s_ = 0;
  double validation_s_ = 0;
  int validate_every_ = 1;
  std::vector<double> recent_train_s_;  // the last kRefitEpochs - 1 epochs' training seconds (never the first)
};

}  // namespace aneura
