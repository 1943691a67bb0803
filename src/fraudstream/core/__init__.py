"""The pure, vectorized core: no network, disk or clock reads happen below this package."""
