<?xml version="1.0" encoding="utf-8"?>
<!-- ngx-rtmp-rs: renders /stat (nginx-rtmp-module's XML) as HTML tables in a browser.
     Use with: location = /stat { rtmp_stat all; rtmp_stat_stylesheet stat.xsl; }
     For a page that updates itself, see dashboard.html. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="html" encoding="utf-8"/>

<xsl:template match="/">
<html>
<head>
<title>RTMP statistics</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.client td { color: #555; font-size: 90%; }
</style>
</head>
<body>
<h1>RTMP statistics</h1>
<p>
nginx <xsl:value-of select="rtmp/nginx_version"/>,
worker <xsl:value-of select="rtmp/pid"/>,
up <xsl:call-template name="duration"><xsl:with-param name="s" select="rtmp/uptime"/></xsl:call-template>,
<xsl:value-of select="rtmp/naccepted"/> connections accepted,
in <xsl:call-template name="rate"><xsl:with-param name="b" select="rtmp/bw_in"/></xsl:call-template>,
out <xsl:call-template name="rate"><xsl:with-param name="b" select="rtmp/bw_out"/></xsl:call-template>
</p>
<table id="streams">
<tr><th>Application</th><th>Stream</th><th>Clients</th><th>In</th><th>Out</th><th>Video</th><th>Audio</th><th>Time</th><th>State</th></tr>
<xsl:apply-templates select="rtmp/server/application"/>
</table>
</body>
</html>
</xsl:template>

<xsl:template match="application">
<xsl:variable name="app" select="name"/>
<xsl:for-each select="live/stream">
<tr class="stream">
<td><xsl:value-of select="$app"/></td>
<td><xsl:value-of select="name"/></td>
<td class="num"><xsl:value-of select="nclients"/></td>
<td class="num"><xsl:call-template name="rate"><xsl:with-param name="b" select="bw_in"/></xsl:call-template></td>
<td class="num"><xsl:call-template name="rate"><xsl:with-param name="b" select="bw_out"/></xsl:call-template></td>
<td><xsl:if test="meta/video/codec"><xsl:value-of select="meta/video/codec"/><xsl:text> </xsl:text><xsl:value-of select="meta/video/profile"/><xsl:text> </xsl:text><xsl:value-of select="meta/video/width"/>x<xsl:value-of select="meta/video/height"/>@<xsl:value-of select="meta/video/frame_rate"/></xsl:if></td>
<td><xsl:if test="meta/audio/codec"><xsl:value-of select="meta/audio/codec"/><xsl:text> </xsl:text><xsl:value-of select="meta/audio/profile"/><xsl:text> </xsl:text><xsl:value-of select="meta/audio/sample_rate"/> Hz <xsl:value-of select="meta/audio/channels"/> ch</xsl:if></td>
<td class="num"><xsl:call-template name="duration"><xsl:with-param name="s" select="floor(time div 1000)"/></xsl:call-template></td>
<td><xsl:choose><xsl:when test="publishing and active">live</xsl:when><xsl:when test="publishing">starting</xsl:when><xsl:otherwise>waiting</xsl:otherwise></xsl:choose></td>
</tr>
<xsl:for-each select="client">
<tr class="client">
<td></td>
<td>#<xsl:value-of select="id"/><xsl:text> </xsl:text><xsl:value-of select="address"/></td>
<td><xsl:choose><xsl:when test="publishing">publisher</xsl:when><xsl:otherwise>player</xsl:otherwise></xsl:choose></td>
<td colspan="4"><xsl:value-of select="flashver"/></td>
<td class="num"><xsl:call-template name="duration"><xsl:with-param name="s" select="floor(time div 1000)"/></xsl:call-template></td>
<td><xsl:if test="active">active</xsl:if></td>
</tr>
</xsl:for-each>
</xsl:for-each>
</xsl:template>

<xsl:template name="rate">
<xsl:param name="b"/>
<xsl:choose>
<xsl:when test="$b &gt;= 1000000"><xsl:value-of select="format-number($b div 1000000, '0.00')"/> Mb/s</xsl:when>
<xsl:when test="$b &gt;= 1000"><xsl:value-of select="format-number($b div 1000, '0')"/> kb/s</xsl:when>
<xsl:otherwise><xsl:value-of select="$b"/> b/s</xsl:otherwise>
</xsl:choose>
</xsl:template>

<xsl:template name="duration">
<xsl:param name="s"/>
<xsl:value-of select="floor($s div 3600)"/>:<xsl:value-of select="format-number(floor($s div 60) mod 60, '00')"/>:<xsl:value-of select="format-number($s mod 60, '00')"/>
</xsl:template>

</xsl:stylesheet>
