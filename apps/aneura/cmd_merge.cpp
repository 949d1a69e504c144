// `aneura merge OUT.csv`: joins the parts that `predict --shard I/N -o OUT.csv` wrote.
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "io/csv.hpp"

namespace aneura::app {

void add_merge(CLI::App& app, Action& action) {
  auto out = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("merge", "Join the parts of a sharded predict (OUT.shard-I-of-N.csv) into OUT.csv");
  cmd->add_option("OUT", *out, "The merged predictions.csv; its parts lie beside it")->required();
  cmd->callback([&action, out] {
    action = [out] {
      const size_t rows = merge_shard_csvs(*out);
      std::cerr << "merge: " << rows << " rows -> " << *out << "\n";
      return 0;
    };
  });
}

}  // namespace aneura::app
