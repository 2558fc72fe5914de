//! Access tokens of caisse systems, checked against the IdP's keys.
