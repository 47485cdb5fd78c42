"""Throwaway local MariaDB + PostgreSQL for the demo and the tests."""
