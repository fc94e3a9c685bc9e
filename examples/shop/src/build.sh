#!/bin/sh
# Builds the site from the library's artifact and this commit.
set -e
mkdir -p site
{
  echo "<h1>$SITE_NAME</h1>"
  echo "<p>$(cat vendor/lib/dist/greeting.txt)</p>"
  echo "<p>built from $REFLINE_COMMIT by run $REFLINE_RUN</p>"
} > site/index.html
