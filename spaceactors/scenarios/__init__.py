"""Example scenarios shipped with spaceactors."""
