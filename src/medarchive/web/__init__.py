"""What every web page shares: the navigation, the error pages, the template context."""
