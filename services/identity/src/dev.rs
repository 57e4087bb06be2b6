//! Development seed for `schakel dev`: placeholder, replaced below.
