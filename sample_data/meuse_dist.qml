<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" classificationMin="0" classificationMax="0.83656812" nodataColor="">
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="0" maximumValue="0.83656812">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="68,1,84,255"/>
              <Option type="QString" name="color2" value="253,231,37,255"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="0.25;59,82,139,255:0.5;33,145,140,255:0.75;94,201,98,255"/>
            </Option>
            <prop k="color1" v="68,1,84,255"/>
            <prop k="color2" v="253,231,37,255"/>
            <prop k="discrete" v="0"/>
            <prop k="rampType" v="gradient"/>
            <prop k="stops" v="0.25;59,82,139,255:0.5;33,145,140,255:0.75;94,201,98,255"/>
          </colorramp>
          <item alpha="255" value="0" label="0" color="#440154"/>
          <item alpha="255" value="0.20914203" label="0.2091" color="#3b528b"/>
          <item alpha="255" value="0.41828406" label="0.4183" color="#21918c"/>
          <item alpha="255" value="0.62742609" label="0.6274" color="#5ec962"/>
          <item alpha="255" value="0.83656812" label="0.8366" color="#fde725"/>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
  <customproperties><Option type="Map"><Option type="QString" name="gcnn_rnn_ramp" value="value"/></Option></customproperties>
</qgis>
