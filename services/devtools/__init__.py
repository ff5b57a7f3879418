"""The tools for running Shequn on one machine, not part of any service: the `shequn` command
(cli), the dev stack (stack), the embedded database server (embedded_mongo), the simulated week
of group life (demo) and the code generator of proto/ (protogen)."""
