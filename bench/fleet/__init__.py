"""A simulated fleet (issue 13, item 5): many agent endpoints on loopback addresses, each a node under
a local root directory with shims for its services, served by a few processes; the controller real."""
